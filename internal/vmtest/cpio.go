package vmtest

import (
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// File is one entry of an initramfs.
type File struct {
	// Path inside the image, without a leading slash: "bin/busybox".
	Path string
	Mode uint32 // permission bits; 0 means 0644 (0755 for directories)
	// Exactly one of Data, Source, Link, or Dir.
	Data   []byte
	Source string // a host file copied in
	Link   string // a symbolic link's target
	Dir    bool
}

// The cpio newc file types.
const (
	typeDir  = 0o040000
	typeFile = 0o100000
	typeLink = 0o120000
)

// cpioWriter writes a cpio archive in the "newc" format that the kernel
// unpacks as an initramfs.
type cpioWriter struct {
	w    io.Writer
	ino  uint32
	n    int64 // bytes written, for the 4-byte alignment
	dirs map[string]bool
}

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: w, ino: 1, dirs: map[string]bool{}}
}

// header writes one entry's header and name.
func (c *cpioWriter) header(name string, mode uint32, size int) error {
	c.ino++
	nlink := 1
	if mode&typeDir == typeDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	if err := c.write([]byte(hdr + name + "\x00")); err != nil {
		return err
	}
	return c.pad()
}

func (c *cpioWriter) write(b []byte) error {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return err
}

func (c *cpioWriter) pad() error {
	if r := c.n % 4; r != 0 {
		return c.write(make([]byte, 4-r))
	}
	return nil
}

// mkdirAll adds the parent directories of p that were not added yet.
func (c *cpioWriter) mkdirAll(p string) error {
	dir := path.Dir(p)
	if dir == "." || dir == "/" || c.dirs[dir] {
		return nil
	}
	if err := c.mkdirAll(dir); err != nil {
		return err
	}
	c.dirs[dir] = true
	return c.header(dir, typeDir|0o755, 0)
}

// add writes one entry with content data.
func (c *cpioWriter) add(name string, mode uint32, data []byte) error {
	name = strings.TrimPrefix(path.Clean(name), "/")
	if err := c.mkdirAll(name); err != nil {
		return err
	}
	if mode&typeDir == typeDir {
		if c.dirs[name] {
			return nil
		}
		c.dirs[name] = true
	}
	if err := c.header(name, mode, len(data)); err != nil {
		return err
	}
	if err := c.write(data); err != nil {
		return err
	}
	return c.pad()
}

// close writes the trailer.
func (c *cpioWriter) close() error {
	return c.header("TRAILER!!!", 0, 0)
}

// writeCPIO writes files as a newc archive, sorted by path so that the
// same files give the same bytes; read loads a Source file.
func writeCPIO(w io.Writer, files []File, read func(string) ([]byte, error)) error {
	sorted := append([]File(nil), files...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	c := newCPIOWriter(w)
	for _, f := range sorted {
		var err error
		switch {
		case f.Dir:
			err = c.add(f.Path, typeDir|orDefault(f.Mode, 0o755), nil)
		case f.Link != "":
			err = c.add(f.Path, typeLink|0o777, []byte(f.Link))
		case f.Source != "":
			var data []byte
			if data, err = read(f.Source); err == nil {
				err = c.add(f.Path, typeFile|orDefault(f.Mode, 0o644), data)
			}
		default:
			err = c.add(f.Path, typeFile|orDefault(f.Mode, 0o644), f.Data)
		}
		if err != nil {
			return fmt.Errorf("vmtest: initramfs: add %s: %w", f.Path, err)
		}
	}
	return c.close()
}

func orDefault(mode, def uint32) uint32 {
	if mode == 0 {
		return def
	}
	return mode
}
