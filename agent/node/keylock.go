package node

import (
	"context"
	"sync"
	"time"
)

// attachKey names one attachment, as the CNI API does.
type attachKey struct{ containerID, ifName string }

// keyLocks serialises the commands of one attachment (an ADD and a DEL of
// the same container never interleave) while commands of different
// attachments run side by side. Entries exist only while held or waited
// for.
type keyLocks struct {
	mu sync.Mutex
	m  map[attachKey]*keyLock
}

type keyLock struct {
	ch   chan struct{} // one holder
	refs int           // holders and waiters
}

// lock waits for key's lock until ctx ends or expire fires (nil: never);
// it returns the unlock function, or false.
func (k *keyLocks) lock(ctx context.Context, key attachKey, expire <-chan time.Time) (func(), bool) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[attachKey]*keyLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, true
	case <-ctx.Done():
	case <-expire:
	}
	release()
	return nil, false
}

// held is how many attachments have a command running or waiting.
func (k *keyLocks) held() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}

// startTimer is the deadline for a command to start: 80% of the plugin's
// timeout (when it says), so that the plugin hears "try again later"
// rather than time out. stop releases the timer.
func startTimer(timeoutMillis int64) (expire <-chan time.Time, stop func()) {
	if timeoutMillis <= 0 {
		return nil, func() {}
	}
	t := time.NewTimer(time.Duration(timeoutMillis) * time.Millisecond * 8 / 10)
	return t.C, func() { t.Stop() }
}
