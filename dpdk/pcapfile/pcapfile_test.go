package pcapfile

import (
	"bytes"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1700000000, 123456000)
	frames := [][]byte{bytes.Repeat([]byte{1}, 60), bytes.Repeat([]byte{2}, 1514)}
	for _, f := range frames {
		if err := w.Write(t0, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 24+2*16+60+1514 {
		t.Fatalf("file is %d bytes", buf.Len())
	}
	got, err := ReadAll(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !bytes.Equal(got[0].Data, frames[0]) || !bytes.Equal(got[1].Data, frames[1]) {
		t.Fatalf("read back %d packets", len(got))
	}
	if !got[0].Time.Equal(t0) || got[1].OrigLen != 1514 {
		t.Fatalf("record header: %v %d", got[0].Time, got[1].OrigLen)
	}
}

func TestReadErrors(t *testing.T) {
	if _, err := ReadAll(bytes.NewReader([]byte("short"))); err == nil {
		t.Error("short header accepted")
	}
	if _, err := ReadAll(bytes.NewReader(make([]byte, 24))); err == nil {
		t.Error("zero magic accepted")
	}
	var buf bytes.Buffer
	w, _ := NewWriter(&buf)
	_ = w.Write(time.Now(), make([]byte, 100))
	_ = w.Flush()
	if _, err := ReadAll(bytes.NewReader(buf.Bytes()[:buf.Len()-1])); err == nil {
		t.Error("truncated record accepted")
	}
}

// TestWriteLen: a truncated frame keeps its original length in the record
// header; an origLen below the data's length is the data's length.
func TestWriteLen(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1700000000, 5000)
	frame := bytes.Repeat([]byte{7}, 1514)
	for _, c := range []struct{ data, orig int }{{96, 1514}, {60, 60}, {60, 10}, {1514, 9000}} {
		if err := w.WriteLen(t0, frame[:c.data], c.orig); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if want := 24 + 4*16 + 96 + 60 + 60 + 1514; buf.Len() != want {
		t.Fatalf("file is %d bytes, want %d", buf.Len(), want)
	}
	got, err := ReadAll(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ data, orig int }{{96, 1514}, {60, 60}, {60, 60}, {1514, 9000}}
	if len(got) != len(want) {
		t.Fatalf("read back %d packets, want %d", len(got), len(want))
	}
	for i, p := range got {
		if len(p.Data) != want[i].data || p.OrigLen != want[i].orig || !bytes.Equal(p.Data, frame[:want[i].data]) {
			t.Errorf("record %d: %d bytes, original length %d; want %d, %d", i, len(p.Data), p.OrigLen, want[i].data, want[i].orig)
		}
		if !p.Time.Equal(t0) {
			t.Errorf("record %d: time %v, want %v", i, p.Time, t0)
		}
	}
}
