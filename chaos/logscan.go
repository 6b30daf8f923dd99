package chaos

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
)

// crashLine matches what a Go process writes when it dies of itself: a panic, a fatal
// runtime error, a data race (a binary built with -race).
var crashLine = regexp.MustCompile(`^(panic: |fatal error: |WARNING: DATA RACE)`)

// Crashes lists the lines of a log that say its process panicked, with their numbers.
func Crashes(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if crashLine.Match(sc.Bytes()) {
			out = append(out, fmt.Sprintf("%s:%d: %s", path, n, sc.Text()))
		}
	}
	return out, sc.Err()
}
