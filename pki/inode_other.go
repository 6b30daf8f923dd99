//go:build !unix

package pki

import "os"

// inode is unknown here; mtime and size still detect a change.
func inode(os.FileInfo) uint64 { return 0 }
