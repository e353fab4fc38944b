package plugin

import (
	"io"
	"os"
	"path/filepath"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// NewLogger logs at level to file (appending; created with its directory),
// or to fallback when file is "" or cannot be opened: a CNI plugin must not
// fail a pod because its log cannot be written. Rotation is the node's
// (logrotate with copytruncate): each invocation opens, appends, closes.
func NewLogger(file string, level zapcore.Level, fallback io.Writer) (log *zap.Logger, closeLog func()) {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.EncodeLevel = zapcore.CapitalLevelEncoder
	enc.EncodeDuration = zapcore.StringDurationEncoder
	enc.ConsoleSeparator = " "
	var w zapcore.WriteSyncer = zapcore.AddSync(fallback)
	closeLog = func() {}
	var openErr error
	if file != "" {
		if err := os.MkdirAll(filepath.Dir(file), 0o750); err != nil {
			openErr = err
		} else if f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640); err != nil {
			openErr = err
		} else {
			w = f
			closeLog = func() { _ = f.Close() }
		}
	}
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), w, level)
	log = zap.New(core).With(zap.Int("pid", os.Getpid()))
	if openErr != nil {
		log.Warn("cannot open the log file, logging to standard error", zap.String("log-file", file), zap.Error(openErr))
	}
	return log, closeLog
}
