package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// declarativeCluster is a director with services of every kind, checks and policies,
// real servers of operators and one of an agent.
func declarativeCluster(t *testing.T) (*leaderStore, string) {
	store, url := testDirector(t)
	for _, args := range [][]string{
		{"service", "add", "-t", "192.0.2.10:80", "-s", "wrr", "-g", "--name", "web", "--check", "http:/healthz,fall=2",
			"--on-down", "inhibit", "--quorum", "2", "--hysteresis", "1", "--sorry", "198.51.100.99:80", "--fail-open", "50"},
		{"server", "add", "web", "198.51.100.21", "-w", "10"},
		{"server", "add", "web", "198.51.100.22", "-w", "5", "--check", "tcp:8080"},
		{"service", "add", "-u", "192.0.2.10:53", "-o", "--name", "dns"},
		{"server", "add", "dns", "198.51.100.31"},
		{"service", "add", "-f", "7", "-6", "-s", "rr", "--name", "mark6"},
		{"service", "add", "-t", "192.0.2.10:443", "--name", "agents-only"},
	} {
		mustRun(t, url, args...)
	}
	store.mu.Lock()
	for _, rs := range []fsm.RealServer{
		{Service: "web", Addr: netip.MustParseAddr("198.51.100.30"), Weight: 3, Origin: fsm.AgentOrigin("rs30")},
		{Service: "agents-only", Addr: netip.MustParseAddr("198.51.100.40"), Weight: 1, Origin: fsm.AgentOrigin("rs40")},
	} {
		p, err := store.state.Prepare(fsm.UpsertAgentRS{RealServer: rs})
		if err == nil {
			err = store.state.Execute(p)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	p, err := store.state.Prepare(fsm.SetHealth{Key: fsm.RSKey{Service: "web", Addr: netip.MustParseAddr("198.51.100.21"), Port: 80},
		Health: fsm.HealthDown, Reason: "HTTP 503", Since: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)})
	if err == nil {
		err = store.state.Execute(p)
	}
	if err != nil {
		t.Fatal(err)
	}
	store.mu.Unlock()
	return store, url
}

func version(s *leaderStore) uint64 {
	var v uint64
	s.View(func(st *fsm.State) { v = st.Version() })
	return v
}

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExportApplyDiffRoundTrip(t *testing.T) {
	store, url := declarativeCluster(t)
	code, exported, stderr := raftlvs(t, url, "", "export")
	if code != exitOK {
		t.Fatalf("export: %d %s", code, stderr)
	}
	for _, want := range []string{"198.51.100.30:80 of web (agent:rs30)", "check: http:/healthz,fall=2", "sorry_server: 198.51.100.99:80", "name: mark6"} {
		if !strings.Contains(exported, want) {
			t.Errorf("the export lacks %q:\n%s", want, exported)
		}
	}
	before := version(store)
	if code, out, stderr := raftlvs(t, url, exported, "apply", "-f", "-", "--prune"); code != exitOK || !strings.Contains(out, "no changes") {
		t.Fatalf("export | apply -f - --prune: exit %d\n%s%s", code, out, stderr)
	}
	if version(store) != before {
		t.Fatal("applying the export changed the state")
	}

	// An edit of the file: another scheduler and check, a weight, a real server gone, one
	// new, a new service; the UDP service left out.
	edited := strings.NewReplacer(
		"scheduler: wrr", "scheduler: rr",
		"check: http:/healthz,fall=2", "check: http:/ready,fall=3",
	).Replace(exported)
	edited = strings.Replace(edited, "  - addr: 198.51.100.21\n    port: 80\n    weight: 10\n", "  - addr: 198.51.100.21\n    port: 80\n    weight: 20\n  - addr: 198.51.100.23\n", 1)
	edited = strings.Replace(edited, "  - addr: 198.51.100.22\n    port: 80\n    weight: 5\n    check: tcp,port=8080\n", "", 1)
	i := strings.Index(edited, "- name: dns")
	j := strings.Index(edited, "- name: mark6")
	edited = edited[:i] + edited[j:] + "- name: api\n  protocol: tcp\n  vip: 192.0.2.11\n  port: 443\n  real_servers:\n  - addr: 198.51.100.41\n"
	file := writeFile(t, "lb.yaml", edited)

	code, diff, stderr := raftlvs(t, url, "", "diff", "-f", file)
	if code != exitOK {
		t.Fatalf("diff: %d %s", code, stderr)
	}
	for _, want := range []string{
		"~ service web (TCP 192.0.2.10:80)\n    health_check: http:/healthz,fall=2 → http:/ready,fall=3\n    scheduler: \"wrr\" → \"rr\"\n",
		"- real server 198.51.100.22:80 of web\n",
		"~ real server 198.51.100.21:80 of web\n    weight: 10 → 20\n",
		"+ real server 198.51.100.23:80 of web (weight 1)\n",
		"+ service api (TCP 192.0.2.11:443)\n",
		"+ real server 198.51.100.41:443 of api (weight 1)\n",
		"not in the file, left alone (--prune removes them): dns\n",
		"left to its agent: 198.51.100.30:80 of web (agent:rs30)\n",
	} {
		if !strings.Contains(diff, want) {
			t.Errorf("diff lacks %q:\n%s", want, diff)
		}
	}
	if version(store) != before {
		t.Fatal("diff changed the state")
	}

	if code, out, stderr := raftlvs(t, url, "", "apply", "-f", file, "--dry-run"); code != exitOK || !strings.Contains(out, "dry run: the leader accepts these 6 commands") {
		t.Fatalf("apply --dry-run: exit %d\n%s%s", code, out, stderr)
	}
	if version(store) != before {
		t.Fatal("apply --dry-run changed the state")
	}
	if code, out, stderr := raftlvs(t, url, "", "apply", "-f", file); code != exitOK || !strings.Contains(out, "applied 6 commands in one batch") {
		t.Fatalf("apply: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, _ := raftlvs(t, url, "", "diff", "-f", file); code != exitOK || !strings.Contains(out, "no changes") {
		t.Errorf("diff after apply:\n%s", out)
	}
	store.View(func(st *fsm.State) {
		web, _ := st.Service("web")
		_, dnsLeft := st.Service("dns")
		agent, agentLeft := st.RealServer(fsm.RSKey{Service: "web", Addr: netip.MustParseAddr("198.51.100.30"), Port: 80})
		if web.Scheduler != "rr" || web.HealthCheck.Path != "/ready" || !dnsLeft || !agentLeft || agent.Weight != 3 || len(st.RealServers("web")) != 3 {
			t.Errorf("after apply: web %+v, dns still there %v, agent's server %+v, web's real servers %d", web, dnsLeft, agent, len(st.RealServers("web")))
		}
		// The weight is the file's; the checks' verdict, its reason and its time stay.
		rs, _ := st.RealServer(fsm.RSKey{Service: "web", Addr: netip.MustParseAddr("198.51.100.21"), Port: 80})
		if rs.Weight != 20 || rs.Health != fsm.HealthDown || rs.HealthReason != "HTTP 503" || !rs.HealthSince.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
			t.Errorf("the edited real server %+v: want weight 20 and its verdict as it was", rs)
		}
	})

	// --prune removes the UDP service, keeps the one agents serve.
	code, out, stderr := raftlvs(t, url, "", "apply", "-f", file, "--prune")
	if code != exitOK || !strings.Contains(out, "- service dns (UDP 192.0.2.10:53) and its 1 real servers\n") || !strings.Contains(out, "applied 1 commands") {
		t.Fatalf("apply --prune: exit %d\n%s%s", code, out, stderr)
	}
	store.View(func(st *fsm.State) {
		if _, ok := st.Service("dns"); ok {
			t.Error("--prune left dns")
		}
		if _, ok := st.Service("agents-only"); !ok {
			t.Error("--prune removed the service agents serve")
		}
	})
	// The export now is the file (as the cluster names and normalizes it).
	_, again, _ := raftlvs(t, url, "", "export")
	if code, out, _ := raftlvs(t, url, again, "diff", "-f", "-", "--prune"); code != exitOK || !strings.Contains(out, "no changes") {
		t.Errorf("diff --prune of a fresh export:\n%s", out)
	}
}

func TestABadFileChangesNothing(t *testing.T) {
	store, url := declarativeCluster(t)
	_, exported, _ := raftlvs(t, url, "", "export")
	before := version(store)
	tests := []struct {
		name, file, inStderr string
		code                 int
	}{
		{"not the format", "services: [\n", "bad raftlvs document", exitError},
		{"an unknown key", strings.Replace(exported, "  scheduler: wrr\n", "  scheduler: wrr\n  colour: red\n", 1), `unknown field "colour"`, exitError},
		// Good on its own, refused by the cluster: a check whose timeout outlasts its
		// interval, after a change the batch would have made first.
		{"refused by the cluster, after a good change", strings.Replace(exported, "scheduler: wrr", "scheduler: rr", 1) +
			"- name: api\n  protocol: tcp\n  vip: 192.0.2.11\n  port: 443\n  check: tcp,interval=1s,timeout=2s\n", "health_check.timeout_ms", exitError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeFile(t, "bad.yaml", tt.file)
			for _, args := range [][]string{{"apply", "-f", file, "--dry-run"}, {"apply", "-f", file, "--prune"}} {
				code, _, stderr := raftlvs(t, url, "", args...)
				if code != tt.code || !strings.Contains(stderr, tt.inStderr) {
					t.Errorf("%s: exit %d %q, want exit %d saying %q", strings.Join(args, " "), code, stderr, tt.code, tt.inStderr)
				}
			}
			if version(store) != before {
				t.Fatal("a bad file changed the state")
			}
		})
	}
	if code, _, stderr := raftlvs(t, url, "", "apply"); code != exitUsage || !strings.Contains(stderr, "filename") {
		t.Errorf("apply without -f: exit %d %q", code, stderr)
	}
}

func TestRestoreDryRunChecksWithoutRestoring(t *testing.T) {
	store, url := testDirector(t)
	mustRun(t, url, "service", "add", "-t", "192.0.2.10:80", "--name", "web")
	before := version(store)
	good := "-A -t 192.0.2.20:80 -s rr\n-a -t 192.0.2.20:80 -r 198.51.100.1:80 -m -w 1\n"
	if code, out, stderr := raftlvs(t, url, good, "restore", "--dry-run"); code != exitOK || !strings.Contains(out, "dry run: the leader accepts the 2 commands") {
		t.Fatalf("restore --dry-run: exit %d\n%s%s", code, out, stderr)
	}
	// The same match as web: the cluster refuses it, and says so without a write.
	clash := "-A -t 192.0.2.10:80 -s rr\n"
	if code, _, stderr := raftlvs(t, url, clash, "restore", "--dry-run"); code != exitError || !strings.Contains(stderr, "vip") {
		t.Errorf("restore --dry-run of a clash: exit %d %q", code, stderr)
	}
	if version(store) != before {
		t.Error("restore --dry-run changed the state")
	}
}

// TestAFileThatNamesAServiceOtherwiseIsTold: services are matched by what they match and
// keep their name; the diff says so rather than rename in silence.
func TestAFileThatNamesAServiceOtherwiseIsTold(t *testing.T) {
	store, url := testDirector(t)
	mustRun(t, url, "service", "add", "-t", "192.0.2.10:80", "--name", "web")
	before := version(store)
	file := writeFile(t, "lb.yaml", "version: 1\nservices:\n- name: www\n  protocol: tcp\n  vip: 192.0.2.10\n  port: 80\n")
	code, out, stderr := raftlvs(t, url, "", "apply", "-f", file)
	if code != exitOK || !strings.Contains(out, "no changes") ||
		!strings.Contains(out, "note: the file's service www is web in the cluster (services are matched by TCP 192.0.2.10:80, and keep their name)") {
		t.Errorf("exit %d\n%s%s", code, out, stderr)
	}
	if version(store) != before {
		t.Error("the state changed")
	}
}
