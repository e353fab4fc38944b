package node

import (
	"context"
	"testing"
	"time"
)

// One command per attachment at a time; other attachments are not held
// up; a waiter gives up at its deadline; entries go when released.
func TestKeyLocks(t *testing.T) {
	var k keyLocks
	ctx := context.Background()
	a, b := attachKey{"c1", "eth0"}, attachKey{"c2", "eth0"}
	unlockA, ok := k.lock(ctx, a, nil)
	if !ok {
		t.Fatal("free lock not taken")
	}
	unlockB, ok := k.lock(ctx, b, nil)
	if !ok {
		t.Fatal("another attachment's lock held up by a's")
	}
	start := time.Now()
	if _, ok := k.lock(ctx, a, time.After(50*time.Millisecond)); ok {
		t.Fatal("held lock taken")
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("gave up after %v, want 50ms", d)
	}
	got := make(chan bool)
	go func() {
		u, ok := k.lock(ctx, a, nil)
		if ok {
			u()
		}
		got <- ok
	}()
	unlockA()
	if !<-got {
		t.Error("waiter did not get the released lock")
	}
	unlockB()
	if n := k.held(); n != 0 {
		t.Errorf("%d entries left after every lock was released", n)
	}
}
