package main

import (
	"os"
	"strings"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
)

func writeConf(t *testing.T, file, data string) {
	t.Helper()
	if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestImportKeepalivedAppliesAndIsIdempotent(t *testing.T) {
	store, url := testDirector(t)
	file := t.TempDir() + "/keepalived.conf"
	writeConf(t, file, `global_defs {
    router_id LB1
}
@lb1 $W=3
virtual_server 192.0.2.10 80 {
    delay_loop 5
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    ~SEQ(N, 1, 2) real_server 10.0.0.${N} 8080 { weight $W }
}
`)
	code, out, errOut := raftlvs(t, url, "", "import", "keepalived", file, "--config-id", "lb1")
	if code != 0 {
		t.Fatalf("dry run: exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"create service tcp-192.0.2.10-80 (TCP 192.0.2.10:80)",
		"create real server 10.0.0.2:8080 of tcp-192.0.2.10-80",
		"keepalived.conf:2:5: unmapped: router_id LB1:",
		"dry run: nothing applied",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
	if code, out, errOut = raftlvs(t, url, "", "import", "keepalived", file, "--config-id", "lb1", "--apply"); code != 0 || !strings.Contains(out, "applied 3 commands") {
		t.Fatalf("apply: exit %d: %s%s", code, out, errOut)
	}
	store.View(func(st *fsm.State) {
		if rs := st.AllRealServers(); len(rs) != 2 || rs[0].Weight != 3 || rs[0].Port != 8080 {
			t.Errorf("real servers in the state: %+v", rs)
		}
	})
	if code, out, _ = raftlvs(t, url, "", "import", "keepalived", file, "--config-id", "lb1"); code != 0 || !strings.Contains(out, "nothing to change") || !strings.Contains(out, "unchanged: 1 services, 2 real servers") {
		t.Errorf("a second import changes something:\n%s", out)
	}
}

func TestImportKeepalivedSaveAndErrors(t *testing.T) {
	file := t.TempDir() + "/keepalived.conf"
	writeConf(t, file, "virtual_server 192.0.2.10 80 {\n    protocol TCP\n    real_server 10.0.0.1 80 {\n        wieght 2\n    }\n}\n")
	code, _, errOut := raftlvs(t, "127.0.0.1:1", "", "import", "keepalived", file, "--offline")
	if code != exitError || !strings.Contains(errOut, `keepalived.conf:4:9: unknown keyword "wieght" in real_server`) {
		t.Errorf("exit %d, stderr %s", code, errOut)
	}
	writeConf(t, file, "virtual_server 192.0.2.10 80 {\n    protocol TCP\n    lb_kind DR\n    real_server 10.0.0.1 80 {\n    }\n}\n")
	code, out, errOut := raftlvs(t, "127.0.0.1:1", "", "import", "keepalived", file, "--save")
	if code != 0 || out != "-A -t 192.0.2.10:80 -s wlc\n-a -t 192.0.2.10:80 -r 10.0.0.1:80 -g -w 1\n" {
		t.Errorf("exit %d, stdout %q, stderr %s", code, out, errOut)
	}
	if code, _, _ = raftlvs(t, "127.0.0.1:1", "", "import", "keepalived", file, "--offline", "--apply"); code != exitUsage {
		t.Errorf("--offline --apply: exit %d, want a usage error", code)
	}
}
