package logging

import (
	"errors"
	"testing"
)

func TestNew(t *testing.T) {
	log, err := New("debug")
	if err != nil || !log.Core().Enabled(-1) {
		t.Fatalf("debug logger: %v (debug enabled: %v)", err, err == nil && log.Core().Enabled(-1))
	}
	if log, err = New("warn"); err != nil || log.Core().Enabled(0) {
		t.Fatalf("warn logger: %v, info enabled", err)
	}
	var lerr *ErrLevel
	if _, err = New("loud"); !errors.As(err, &lerr) || err.Error() != `--log-level: unrecognized level: "loud"` {
		t.Fatalf("bad level: %v", err)
	}
}
