// Package pcapfile reads and writes classic libpcap capture files of
// Ethernet frames (what tcpdump, tshark and Wireshark open), for captures of
// the fast path's ports and for feeding net_pcap ports in tests.
package pcapfile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

const (
	magicMicro    = 0xa1b2c3d4
	magicNano     = 0xa1b23c4d
	linkEthernet  = 1
	defaultSnap   = 65535
	globalHdrLen  = 24
	recordHdrLen  = 16
	maxRecordSize = 256 << 10
)

// Packet is one captured frame.
type Packet struct {
	Time time.Time
	Data []byte
	// OrigLen is the frame's length on the wire (>= len(Data)).
	OrigLen int
}

// Writer writes a capture with microsecond timestamps.
type Writer struct {
	w *bufio.Writer
}

// NewWriter writes the file header to w.
func NewWriter(w io.Writer) (*Writer, error) {
	bw := bufio.NewWriter(w)
	var h [globalHdrLen]byte
	binary.LittleEndian.PutUint32(h[0:], magicMicro)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], defaultSnap)
	binary.LittleEndian.PutUint32(h[20:], linkEthernet)
	if _, err := bw.Write(h[:]); err != nil {
		return nil, fmt.Errorf("pcap header: %w", err)
	}
	return &Writer{w: bw}, nil
}

// Write appends one frame captured at t, whole: its original length is
// len(frame).
func (w *Writer) Write(t time.Time, frame []byte) error { return w.WriteLen(t, frame, len(frame)) }

// WriteLen appends one frame captured at t of which frame holds the first
// bytes (a capture with a snap length): origLen is its length on the wire,
// written as the record's original length. An origLen below len(frame) is
// taken as len(frame).
func (w *Writer) WriteLen(t time.Time, frame []byte, origLen int) error {
	origLen = max(origLen, len(frame))
	var h [recordHdrLen]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(t.Unix()))
	binary.LittleEndian.PutUint32(h[4:], uint32(t.Nanosecond()/1000))
	binary.LittleEndian.PutUint32(h[8:], uint32(len(frame)))
	binary.LittleEndian.PutUint32(h[12:], uint32(origLen))
	if _, err := w.w.Write(h[:]); err != nil {
		return fmt.Errorf("pcap record: %w", err)
	}
	if _, err := w.w.Write(frame); err != nil {
		return fmt.Errorf("pcap record: %w", err)
	}
	return nil
}

// Flush writes buffered records out.
func (w *Writer) Flush() error { return w.w.Flush() }

// ReadAll reads every record of a capture (either byte order, micro- or
// nanosecond timestamps). A truncated last record is an error.
func ReadAll(r io.Reader) ([]Packet, error) {
	br := bufio.NewReader(r)
	var h [globalHdrLen]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, fmt.Errorf("pcap header: %w", err)
	}
	var bo binary.ByteOrder = binary.LittleEndian
	magic := bo.Uint32(h[0:])
	if magic != magicMicro && magic != magicNano {
		bo = binary.BigEndian
		magic = bo.Uint32(h[0:])
	}
	if magic != magicMicro && magic != magicNano {
		return nil, fmt.Errorf("pcap header: bad magic %#x", h[0:4])
	}
	if lt := bo.Uint32(h[20:]); lt != linkEthernet {
		return nil, fmt.Errorf("pcap header: link type %d, want Ethernet (1)", lt)
	}
	var out []Packet
	for {
		var rh [recordHdrLen]byte
		if _, err := io.ReadFull(br, rh[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, fmt.Errorf("pcap record %d header: %w", len(out), err)
		}
		sec, frac := bo.Uint32(rh[0:]), bo.Uint32(rh[4:])
		incl, orig := bo.Uint32(rh[8:]), bo.Uint32(rh[12:])
		if incl > maxRecordSize {
			return out, fmt.Errorf("pcap record %d: %d bytes is not a frame", len(out), incl)
		}
		data := make([]byte, incl)
		if _, err := io.ReadFull(br, data); err != nil {
			return out, fmt.Errorf("pcap record %d data: %w", len(out), err)
		}
		ns := int64(frac) * 1000
		if magic == magicNano {
			ns = int64(frac)
		}
		out = append(out, Packet{Time: time.Unix(int64(sec), ns), Data: data, OrigLen: int(orig)})
	}
}
