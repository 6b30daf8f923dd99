//go:build linux

package chaos

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// diskSize is the tmpfs that holds the disk victim's data dir: a few times what a
// director's Raft log and snapshots take here, and small enough to fill in a moment.
const diskSize = 32 << 20

// fillerName is the file that fills a data dir's disk.
const fillerName = "chaos-filler"

// mountDataDisk mounts a small tmpfs at dir, the data dir of the director whose disk the
// nemesis fills: a disk of its own that filling never takes from the machine's.
func mountDataDisk(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	opts := fmt.Sprintf("size=%d,mode=0700", diskSize)
	if err := syscall.Mount(mountSource(), dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount a tmpfs at %s: %w", dir, err)
	}
	return nil
}

func unmountDataDisk(dir string) error {
	if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return nil
}

// fillDisk writes a file into dir until its filesystem has no space left, and returns
// how much it wrote.
func fillDisk(dir string) (int64, error) {
	f, err := os.OpenFile(filepath.Join(dir, fillerName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var total int64
	for _, chunk := range []int{1 << 20, 4 << 10, 512} {
		buf := make([]byte, chunk)
		for {
			n, err := f.Write(buf)
			total += int64(n)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				return total, fmt.Errorf("fill %s: %w", dir, err)
			}
		}
	}
	return total, nil
}

// freeDisk removes what fillDisk wrote.
func freeDisk(dir string) error {
	if err := os.Remove(filepath.Join(dir, fillerName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
