// Package logging builds the zap logger every Filament daemon logs with:
// JSON lines, ISO 8601 times, the level its --log-level flag names.
package logging

import (
	"fmt"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ErrLevel wraps a --log-level value zap does not know (a usage error).
type ErrLevel struct{ Err error }

func (e *ErrLevel) Error() string { return "--log-level: " + e.Err.Error() }
func (e *ErrLevel) Unwrap() error { return e.Err }

// New returns the production logger at level ("debug", "info", ...).
func New(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, &ErrLevel{err}
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	log, err := zc.Build()
	if err != nil {
		return nil, fmt.Errorf("logger: %w", err)
	}
	return log, nil
}
