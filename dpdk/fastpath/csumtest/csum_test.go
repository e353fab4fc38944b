package csumtest

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// sum is the one's complement sum of b's 16-bit words (big-endian).
func sum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// TestSameVerdict: accept and reject exactly where the 16-bit-word check
// did, on random headers with a right checksum, with one bit flipped, and
// random bytes, at every alignment, for IHL 5 to 15; and on the headers
// where folding differs (all zero, all ones, sums of 0 and 0xffff).
func TestSameVerdict(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 64+8)
	accepted := 0
	check := func(h []byte, what string) {
		t.Helper()
		ihl := len(h)
		for off := 0; off < 8; off++ {
			copy(buf[off:], h)
			n, o := Verdicts(buf, off, ihl)
			if n != o {
				t.Fatalf("%s, ihl %d, offset %d: new %v, old %v: % x", what, ihl, off, n, o, h)
			}
			if n {
				accepted++
			}
		}
	}
	for i := 0; i < 200000; i++ {
		ihl := 20
		if i%4 == 3 {
			ihl = 4 * (5 + r.IntN(11))
		}
		h := make([]byte, ihl)
		for j := range h {
			h[j] = byte(r.Uint32())
		}
		switch i % 3 {
		case 0: // random bytes: mostly rejected
		case 1, 2: // right checksum, then (2) one bit flipped
			h[10], h[11] = 0, 0
			binary.BigEndian.PutUint16(h[10:], ^sum(h))
			if i%3 == 2 {
				k := r.IntN(ihl * 8)
				h[k/8] ^= 1 << (k % 8)
			}
		}
		check(h, "random")
	}
	for _, ihl := range []int{20, 24, 60} {
		for _, fill := range []byte{0x00, 0xff, 0x01, 0x80, 0xfe} {
			h := make([]byte, ihl)
			for j := range h {
				h[j] = fill
			}
			check(h, "fill")
			// the checksum field as 0x0000 and 0xffff: both are
			// one's complement zeros
			for _, c := range []uint16{0, 0xffff, ^sum(h)} {
				binary.BigEndian.PutUint16(h[10:], c)
				check(h, "checksum field")
			}
		}
		// a header whose words sum to 0xffff with a zero checksum
		// field, and to 0xfffe: one carry apart
		h := make([]byte, ihl)
		binary.BigEndian.PutUint16(h[0:], 0x4500)
		binary.BigEndian.PutUint16(h[2:], 0xbaff)
		check(h, "0xffff")
		binary.BigEndian.PutUint16(h[2:], 0xbafe)
		check(h, "0xfffe")
		// every word 0xffff but one
		for k := 0; k < ihl; k += 2 {
			for j := range h {
				h[j] = 0xff
			}
			h[k], h[k+1] = 0, 1
			check(h, "carries")
		}
	}
	if accepted < 100000 {
		t.Fatalf("only %d accepted: the test does not exercise acceptance", accepted)
	}
}

// TestTTLDecSameBytes: the TTL decrement writes the bytes the RFC 1624 eqn. 3
// code wrote, for every checksum field value and TTLs 2, 64 and 255, and
// its checksum is still right where the header's was.
func TestTTLDecSameBytes(t *testing.T) {
	h := make([]byte, 20)
	h[0] = 0x45
	for _, ttl := range []byte{2, 64, 255} {
		for c := 0; c <= 0xffff; c++ {
			h[8] = ttl
			binary.BigEndian.PutUint16(h[10:], uint16(c))
			n, r := TTLDec(h)
			if !bytes.Equal(n, r) {
				t.Fatalf("ttl %d, checksum %#04x: new % x, old % x", ttl, c, n, r)
			}
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 10000; i++ {
		for j := range h {
			h[j] = byte(r.Uint32())
		}
		h[0], h[8] = 0x45, byte(2+r.IntN(254))
		h[10], h[11] = 0, 0
		binary.BigEndian.PutUint16(h[10:], ^sum(h))
		n, _ := TTLDec(h)
		if sum(n) != 0xffff {
			t.Fatalf("checksum wrong after the decrement: % x -> % x", h, n)
		}
	}
}

// TestFold: fp_csum_fold gives what two mask-shift-add folds give on every
// sum up to 2^24 (a header's or a tunnel template's: 2^18 at most) and on
// every 257th 32-bit value.
func TestFold(t *testing.T) {
	if x := FoldMismatch(0, 1, 1<<24); x >= 0 {
		t.Fatalf("fp_csum_fold(%#x) differs", x)
	}
	if x := FoldMismatch(0, 257, 1<<32/257); x >= 0 {
		t.Fatalf("fp_csum_fold(%#x) differs", x)
	}
}
