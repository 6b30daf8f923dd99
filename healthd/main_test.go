package healthd

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// farmEnv makes the test binary a listener farm instead of running tests: the benchmarks
// start one in a child process, so that the CPU they measure is the checker's alone.
const farmEnv = "RAFTLVS_HEALTHD_TEST_FARM"

func TestMain(m *testing.M) {
	if n, err := strconv.Atoi(os.Getenv(farmEnv)); err == nil {
		serveFarm(n)
		return
	}
	os.Exit(m.Run())
}

// serveFarm listens on n loopback ports, prints them on one line, and accepts and closes
// connections until its stdin closes.
func serveFarm(n int) {
	var ports []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		ports = append(ports, strconv.Itoa(int(addrPort(l.Addr()).Port())))
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	fmt.Println(strings.Join(ports, " "))
	io.Copy(io.Discard, os.Stdin)
}

// farm starts a listener farm of n ports and returns their addresses; it ends with b.
func farm(b *testing.B, n int) []netip.AddrPort {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), farmEnv+"="+strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var once sync.Once
	b.Cleanup(func() { once.Do(func() { stdin.Close(); cmd.Wait() }) })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("listener farm: %v", err)
	}
	var out []netip.AddrPort
	for _, p := range strings.Fields(line) {
		port, err := strconv.Atoi(p)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, netip.AddrPortFrom(lo4, uint16(port)))
	}
	return out
}
