package plugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/filament-net/filament/agent/cniapi"
)

// Caller sends requests to the agent with the configuration's polling
// policy: attempt n (1-based) may run until start + n x Timeout; an attempt
// that fails early (the agent is not listening, or answers
// CodeTryAgainLater) is followed by the next one when its slot ends, so
// the agent gets poll-timeout x poll-retries in all and the call never
// takes longer. Retried: connection failures, attempts that time out, other
// transport failures (the agent died mid-request: every command is
// idempotent) and CodeTryAgainLater. Not retried: the agent's other
// refusals and answers that are not the contract's.
type Caller struct {
	API     *cniapi.Client
	Timeout time.Duration // poll-timeout: one attempt's slot
	Retries int           // poll-retries: attempts
	Log     *zap.Logger
}

// CallOptions adjust one call.
type CallOptions struct {
	// Attempts overrides Retries when above zero.
	Attempts int
	// StopWhenGone ends the call at the first sign that no agent runs
	// (no socket, or nothing listening): DEL's policy.
	StopWhenGone bool
}

// UnreachableError is a call that got no usable answer in its budget.
type UnreachableError struct {
	Endpoint string
	Attempts int
	Elapsed  time.Duration
	Budget   time.Duration
	// Gone: nothing listens at Endpoint (no socket or connection refused).
	Gone bool
	// Last is the last attempt's failure: a transport error, or the
	// agent's CodeTryAgainLater *cniapi.Error.
	Last error
}

func (e *UnreachableError) Error() string {
	var ae *cniapi.Error
	if errors.As(e.Last, &ae) {
		return fmt.Sprintf("filament-agent at %s still not ready after %d attempt(s) in %s (budget %s, poll-timeout x poll-retries): %v",
			e.Endpoint, e.Attempts, e.Elapsed.Round(time.Millisecond), e.Budget, e.Last)
	}
	return fmt.Sprintf("filament-agent at %s unreachable after %d attempt(s) in %s (budget %s, poll-timeout x poll-retries): %v",
		e.Endpoint, e.Attempts, e.Elapsed.Round(time.Millisecond), e.Budget, e.Last)
}

func (e *UnreachableError) Unwrap() error { return e.Last }

// agentGone reports a dial that found no agent: no socket file, or nobody
// listening on it or on the TCP port.
func agentGone(err error) bool {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		return false
	}
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}

// Call sends req to path; see Caller. The error is the agent's refusal
// (*cniapi.Error), an *UnreachableError, or an answer that is not the
// contract's (wrapping cniapi.ErrBadResponse).
func (c *Caller) Call(ctx context.Context, path string, req *cniapi.Request, o CallOptions) (*cniapi.Response, error) {
	attempts := c.Retries
	if o.Attempts > 0 {
		attempts = o.Attempts
	}
	if attempts < 1 {
		attempts = 1
	}
	start := time.Now()
	unreachable := func(n int, gone bool, last error) *UnreachableError {
		return &UnreachableError{Endpoint: c.API.Endpoint(), Attempts: n, Elapsed: time.Since(start),
			Budget: c.Timeout * time.Duration(attempts), Gone: gone, Last: last}
	}
	var last error
	for n := 1; ; n++ {
		slotEnd := start.Add(time.Duration(n) * c.Timeout)
		actx, cancel := context.WithDeadline(ctx, slotEnd)
		r := *req
		r.TimeoutMillis = max(time.Until(slotEnd).Milliseconds(), 1)
		resp, err := c.API.Do(actx, path, &r)
		cancel()
		switch {
		case err == nil && resp.Error != nil && resp.Error.Code == cniapi.CodeTryAgainLater:
			last = resp.Error
			c.Log.Debug("agent: try again later", zap.String("path", path), zap.Int("attempt", n), zap.String("msg", resp.Error.Error()))
		case err == nil && resp.Error != nil:
			return nil, resp.Error
		case err == nil:
			return resp, nil
		case errors.Is(err, cniapi.ErrBadResponse):
			return nil, fmt.Errorf("%s: %w", c.API.Endpoint(), err)
		default:
			last = err
			gone := agentGone(err)
			c.Log.Debug("agent: attempt failed", zap.String("path", path), zap.Int("attempt", n), zap.Bool("gone", gone), zap.Error(err))
			if gone && o.StopWhenGone {
				return nil, unreachable(n, true, err)
			}
			if ctx.Err() != nil {
				return nil, unreachable(n, gone, err)
			}
		}
		if n == attempts {
			return nil, unreachable(n, agentGone(last), last)
		}
		t := time.NewTimer(time.Until(slotEnd))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, unreachable(n, agentGone(last), fmt.Errorf("%w (last: %v)", ctx.Err(), last))
		case <-t.C:
		}
	}
}
