package attach

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// inNetns runs fn on an OS thread that has joined the network namespace at
// nsPath. The thread is never unlocked: it ends with its goroutine, so no
// other goroutine can ever run in the pod's namespace.
func inNetns(nsPath string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", nsPath, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", nsPath, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// ifreqData is struct ifreq with ifr_data set: a pointer kept as one so the
// garbage collector sees it.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte // the ifreq union is 24 bytes
}

// ethtool runs SIOCETHTOOL on ifName with buf as the command's struct
// (its first 4 bytes are the command).
func ethtool(fd int, ifName string, buf []byte) error {
	var ifr ifreqData
	copy(ifr.name[:unix.IFNAMSIZ-1], ifName)
	ifr.data = unsafe.Pointer(&buf[0])
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return e
	}
	return nil
}

const (
	ethSSFeatures = 4  // ETH_SS_FEATURES: the feature names' string set
	ethGStringLen = 32 // ETH_GSTRING_LEN
)

var ne = binary.NativeEndian

// offloadFeature: the features the fast path cannot honour: partial TX
// checksums and TCP/UDP segmentation (with every TSO variant the kernel
// has, such as tx-tcp-accecn-segmentation, which the legacy ETHTOOL_STSO
// does not cover).
func offloadFeature(name string) bool {
	return strings.HasPrefix(name, "tx-checksum-") || name == "tx-udp-segmentation" ||
		strings.HasPrefix(name, "tx-tcp") && strings.HasSuffix(name, "-segmentation")
}

// featureNames lists the device's feature names (ETHTOOL_GSSET_INFO and
// ETHTOOL_GSTRINGS of ETH_SS_FEATURES): the index of a name is its bit.
func featureNames(fd int, ifName string) ([]string, error) {
	info := make([]byte, 8+8+4) // cmd, reserved, sset_mask, data[1]
	ne.PutUint32(info[0:], unix.ETHTOOL_GSSET_INFO)
	ne.PutUint64(info[8:], 1<<ethSSFeatures)
	if err := ethtool(fd, ifName, info); err != nil {
		return nil, fmt.Errorf("ETHTOOL_GSSET_INFO: %w", err)
	}
	if ne.Uint64(info[8:])&(1<<ethSSFeatures) == 0 {
		return nil, errors.New("the device has no feature names")
	}
	n := int(ne.Uint32(info[16:]))
	gs := make([]byte, 12+n*ethGStringLen) // cmd, string_set, len, data
	ne.PutUint32(gs[0:], unix.ETHTOOL_GSTRINGS)
	ne.PutUint32(gs[4:], ethSSFeatures)
	ne.PutUint32(gs[8:], uint32(n))
	if err := ethtool(fd, ifName, gs); err != nil {
		return nil, fmt.Errorf("ETHTOOL_GSTRINGS: %w", err)
	}
	names := make([]string, n)
	for i := range names {
		b := gs[12+i*ethGStringLen : 12+(i+1)*ethGStringLen]
		if j := bytes.IndexByte(b, 0); j >= 0 {
			b = b[:j]
		}
		names[i] = string(b)
	}
	return names, nil
}

// activeOffloads lists the offloadFeature features that are on
// (ETHTOOL_GFEATURES' active bits).
func activeOffloads(fd int, ifName string, names []string) ([]string, error) {
	blocks := (len(names) + 31) / 32
	gf := make([]byte, 8+blocks*16) // cmd, size, {available, requested, active, never_changed}[size]
	ne.PutUint32(gf[0:], unix.ETHTOOL_GFEATURES)
	ne.PutUint32(gf[4:], uint32(blocks))
	if err := ethtool(fd, ifName, gf); err != nil {
		return nil, fmt.Errorf("ETHTOOL_GFEATURES: %w", err)
	}
	var on []string
	for i, name := range names {
		active := ne.Uint32(gf[8+(i/32)*16+8:])
		if offloadFeature(name) && active&(1<<(i%32)) != 0 {
			on = append(on, name)
		}
	}
	return on, nil
}

func ethtoolSocket(nsPath string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("ethtool socket in %s: %w", nsPath, err)
	}
	return fd, nil
}

// OffloadsOff turns TX checksum offload and TCP/UDP segmentation off on
// ifName in the netns (the fast path does not complete partial checksums
// nor segment) with ETHTOOL_SFEATURES, by feature name, and checks they
// are off.
func OffloadsOff(nsPath, ifName string) error {
	return inNetns(nsPath, func() error {
		fd, err := ethtoolSocket(nsPath)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		names, err := featureNames(fd, ifName)
		if err != nil {
			return fmt.Errorf("%s in %s: %w", ifName, nsPath, err)
		}
		blocks := (len(names) + 31) / 32
		sf := make([]byte, 8+blocks*8) // cmd, size, {valid, requested}[size]
		ne.PutUint32(sf[0:], unix.ETHTOOL_SFEATURES)
		ne.PutUint32(sf[4:], uint32(blocks))
		for i, name := range names {
			if offloadFeature(name) {
				off := 8 + (i/32)*8
				ne.PutUint32(sf[off:], ne.Uint32(sf[off:])|1<<(i%32)) // valid; requested stays 0: off
			}
		}
		// A positive answer (some features fixed or not changeable) is
		// not an error: what counts is what is active after.
		if err := ethtool(fd, ifName, sf); err != nil {
			return fmt.Errorf("ETHTOOL_SFEATURES on %s in %s: %w", ifName, nsPath, err)
		}
		on, err := activeOffloads(fd, ifName, names)
		if err != nil {
			return fmt.Errorf("%s in %s: %w", ifName, nsPath, err)
		}
		if len(on) > 0 {
			return fmt.Errorf("%s in %s: cannot turn off %s", ifName, nsPath, strings.Join(on, ", "))
		}
		return nil
	})
}

// ActiveOffloads lists the TX checksum and segmentation offloads that are
// on for ifName in the netns (none after OffloadsOff).
func ActiveOffloads(nsPath, ifName string) (on []string, err error) {
	err = inNetns(nsPath, func() error {
		fd, err := ethtoolSocket(nsPath)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		names, err := featureNames(fd, ifName)
		if err != nil {
			return fmt.Errorf("%s in %s: %w", ifName, nsPath, err)
		}
		on, err = activeOffloads(fd, ifName, names)
		return err
	})
	return on, err
}
