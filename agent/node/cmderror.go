package node

import (
	"errors"

	"github.com/filament-net/filament/agent/cniapi"
)

// Failures a caller must tell apart, matched with errors.Is on a command's
// error (its kind) rather than by its message, which is for people; the
// others are told apart by their CNI code.
var (
	// errBusy: another command of the same attachment (or the agent's
	// resync) held it for the whole start deadline.
	errBusy = errors.New("busy")
	// errUnknownNetwork: the request's network is not one of the node's.
	errUnknownNetwork = errors.New("unknown network")
	// errAddressChanged (Kubernetes mode): the pod interface is attached
	// with other addresses than its Port now gives.
	errAddressChanged = errors.New("address changed")
)

// cmdError is a failed CNI command: what filament-cni hears (code, summary,
// details) and, for the failures callers tell apart, which one it is.
type cmdError struct {
	code    uint
	msg     string
	details error // nil: none
	kind    error // one of the sentinels above; nil: its code says enough
}

func failed(code uint, msg string, details error) *cmdError {
	return &cmdError{code: code, msg: msg, details: details}
}

func (e *cmdError) Error() string        { return e.wire().Error() }
func (e *cmdError) Is(target error) bool { return e.kind != nil && e.kind == target }
func (e *cmdError) Unwrap() error        { return e.details }

// wire is the error as filament-cni hears it.
func (e *cmdError) wire() *cniapi.Error {
	w := &cniapi.Error{Code: e.code, Msg: e.msg}
	if e.details != nil {
		w.Details = e.details.Error()
	}
	return w
}

// response is a command's answer: its result, or its error.
func response(res *cniapi.Result, err error) *cniapi.Response {
	if err == nil {
		return &cniapi.Response{Result: res}
	}
	var ce *cmdError
	if !errors.As(err, &ce) {
		ce = failed(cniapi.CodeIOFailure, "internal error", err) // every command error is a cmdError
	}
	return &cniapi.Response{Error: ce.wire()}
}

func cniErr(code uint, msg string, err error) *cniapi.Response {
	return response(nil, failed(code, msg, err))
}

func busyErr() *cmdError {
	return &cmdError{code: cniapi.CodeTryAgainLater, msg: msgBusy, kind: errBusy}
}

func busy() *cniapi.Response { return response(nil, busyErr()) }

func notReadyErr() *cmdError {
	return failed(cniapi.CodeTryAgainLater, "the agent has not programmed the dataplane yet", nil)
}

func notReady() *cniapi.Response { return response(nil, notReadyErr()) }
