//go:build linux

package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/pki"
)

// The status page in a real headless Chromium (Debian's chromium; .ci/run installs it):
// the page of a running cluster is loaded, its DOM checked against the cluster, the
// cluster changed (a weight, a real server down, a leadership transfer) and the page
// must follow without a reload. The waits are bounded; nothing asserts on speed.

// chromiumPath finds the browser: RAFTLVS_CHROMIUM, else chromium on PATH.
func chromiumPath() string {
	if p := os.Getenv("RAFTLVS_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// newBrowser starts a headless Chromium with the flags this closed network needs
// (without the background-networking ones its connections are refused, many at a
// time) and a fresh profile, and returns a tab's context.
func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		t.Skip("no chromium found (install Debian's chromium, or set RAFTLVS_CHROMIUM): the status page's browser test cannot run")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// The first action starts the browser, and must not run under a timeout (it would
	// stop the browser with it): wait for it in bounded time instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start %s: %v", path, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not start within a minute", path)
	}
	return ctx
}

// waitDOM evaluates cond (a JavaScript expression that yields a boolean) until it is
// true, for at most limit; on failure it reports detail (another expression) too.
func waitDOM(t *testing.T, ctx context.Context, what string, limit time.Duration, cond, detail string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ok, err := chromedp.Run(ectx, chromedp.Evaluate[bool](cond))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			got, _ := chromedp.Run(dctx, chromedp.Evaluate[string](detail))
			cancel()
			t.Fatalf("the page never showed %s within %s (last error %v); it shows: %s", what, limit, err, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// row is the JavaScript for one element's attribute, "" when there is none.
func attr(selector, name string) string {
	return fmt.Sprintf(`((e) => e ? e.getAttribute(%q) || "" : "")(document.querySelector(%q))`, name, selector)
}

func rsRow(addr string) string {
	return fmt.Sprintf(`div.svc[data-service="web"] tr[data-rs="%s:80"]`, addr)
}

func TestStatusPageFollowsTheClusterInABrowser(t *testing.T) {
	ctx := newBrowser(t)
	c := startCluster(t)
	c.seed(t)
	leader := c.leader(t)
	programmed(t, leader, map[netip.Addr]int{rs1: 10, rs2: 0})
	url := "http://" + leader.d.APIAddr() + "/"
	nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	if err := chromedp.Do(nctx, chromedp.Navigate(url)); err != nil {
		cancel()
		t.Fatalf("load %s: %v", url, err)
	}
	cancel()
	const bound = 20 * time.Second
	rows := `JSON.stringify([...document.querySelectorAll("#director-rows tr, #vip-rows tr, div.svc tr[data-rs]")].map((r) => ({...r.dataset})))`

	// The directors, who holds the VIP, the service and its real servers.
	waitDOM(t, ctx, "the answering director", bound,
		fmt.Sprintf(`document.querySelector("#answered-by").dataset.director === %q && document.querySelector("#answer").dataset.state === "fresh"`, leader.id),
		`document.querySelector("header").innerText`)
	for _, d := range c.directors {
		role := "follower"
		if d == leader {
			role = "leader"
		}
		row := `#director-rows tr[data-director="` + d.id + `"]`
		// The leader knows each follower's lag, in entries, from its last answer.
		waitDOM(t, ctx, d.id+" as "+role+" with its lag", bound,
			fmt.Sprintf(`%s === %q && %s !== "unreachable" && /^[0-9]+$/.test(%s)`, attr(row, "data-role"), role,
				attr(row, "data-contact"), attr(row, "data-lag")), rows)
	}
	waitDOM(t, ctx, "the VIP held by the leader", bound,
		fmt.Sprintf(`%s === %q`, attr(`#vip-rows tr[data-vip="`+webVIP.String()+`"]`, "data-holder"), leader.id), rows)
	for _, want := range []struct{ addr, weight, health, admin, inIPVS string }{
		{rs1.String(), "10", "up", "active", "yes"},
		{rs2.String(), "20", "up", "draining", "yes"},
		{rs3.String(), "30", "down", "active", "no"},
	} {
		sel := rsRow(want.addr)
		waitDOM(t, ctx, "real server "+want.addr, bound,
			fmt.Sprintf(`%s === %q && %s === %q && %s === %q && %s === %q`, attr(sel, "data-weight"), want.weight,
				attr(sel, "data-health"), want.health, attr(sel, "data-admin"), want.admin, attr(sel, "data-in-ipvs"), want.inIPVS), rows)
	}
	waitDOM(t, ctx, "the leader in the timeline", bound,
		fmt.Sprintf(`!!document.querySelector('#event-list li[data-kind="leader"][data-subject=%q]')`, leader.id),
		`document.querySelector("#event-list").innerText`)

	// A weight, then a real server down: the page follows without a reload.
	c.setWeightAndAdmin(t, rs1, 50, "active")
	waitDOM(t, ctx, "rs1's new weight", bound, fmt.Sprintf(`%s === "50"`, attr(rsRow(rs1.String()), "data-weight")), rows)
	c.serve(t, rs1, http.StatusServiceUnavailable)
	waitDOM(t, ctx, "rs1 down", bound, fmt.Sprintf(`%s === "down" && %s === "no"`,
		attr(rsRow(rs1.String()), "data-health"), attr(rsRow(rs1.String()), "data-in-ipvs")), rows)
	waitDOM(t, ctx, "rs1's transition in the timeline", bound,
		fmt.Sprintf(`!!document.querySelector('#event-list li[data-kind="health"][data-subject="web %s:80"][data-to="down"]')`, rs1),
		`document.querySelector("#event-list").innerText`)

	// A follower crashes: the leader, whose page this is, sees its heartbeats fail.
	var crashed, other *testDirector
	for _, d := range c.directors {
		switch {
		case d == leader:
		case crashed == nil:
			crashed = d
		default:
			other = d
		}
	}
	if err := crashed.node().Close(); err != nil {
		t.Fatalf("crash %s: %v", crashed.id, err)
	}
	waitDOM(t, ctx, crashed.id+" unreachable", bound,
		fmt.Sprintf(`%s === "unreachable"`, attr(`#director-rows tr[data-director="`+crashed.id+`"]`, "data-contact")), rows)

	// A leadership transfer: the page, still served by the old leader, shows it a
	// follower, the new leader, and the VIP with the new leader.
	if err := c.client.TransferLeadership(context.Background(), other.id); err != nil {
		t.Fatalf("transfer leadership to %s: %v", other.id, err)
	}
	waitDOM(t, ctx, "the new leader", bound, fmt.Sprintf(`%s === "leader" && %s === "follower"`,
		attr(`#director-rows tr[data-director="`+other.id+`"]`, "data-role"),
		attr(`#director-rows tr[data-director="`+leader.id+`"]`, "data-role")), rows)
	waitDOM(t, ctx, "the VIP with the new leader", bound,
		fmt.Sprintf(`%s === %q`, attr(`#vip-rows tr[data-vip="`+webVIP.String()+`"]`, "data-holder"), other.id), rows)
	waitDOM(t, ctx, "the VIP release in the timeline", bound,
		fmt.Sprintf(`!!document.querySelector('#event-list li[data-kind="vip"][data-subject=%q][data-to="released"]')`, webVIP),
		`document.querySelector("#event-list").innerText`)
	screenshot(t, ctx, "status-page.png")

	// The new leader crashes too: the page's director, alone, has lost its leader and
	// says so, and its figures are stamped as its last view.
	if err := other.node().Close(); err != nil {
		t.Fatalf("crash %s: %v", other.id, err)
	}
	waitDOM(t, ctx, "the warning that the leader is lost", bound,
		fmt.Sprintf(`document.querySelector("#warning").dataset.warning === "yes" && %s !== "leader"`,
			attr(`#director-rows tr[data-director="`+other.id+`"]`, "data-role")),
		`document.querySelector("header").innerText`)
	screenshot(t, ctx, "status-page-leader-lost.png")

	// The page's own director stops: the page says it has no answer, and how old
	// what it still shows is.
	if err := leader.node().Close(); err != nil {
		t.Fatalf("stop %s: %v", leader.id, err)
	}
	waitDOM(t, ctx, "that the director stopped answering", bound,
		`document.querySelector("#answer").dataset.state === "failing" && document.querySelector("#answer-age").textContent.includes("no answer for")`,
		`document.querySelector("header").innerText`)
}

// screenshot saves the whole page as name under the test's temp dir, or under
// RAFTLVS_SCREENSHOT_DIR to keep it (the temp dir goes with the test).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := t.TempDir()
	if d := os.Getenv("RAFTLVS_SCREENSHOT_DIR"); d != "" {
		dir = d // to keep it: the test's temp dir goes with the test
	}
	shot := filepath.Join(dir, name)
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)
}

// TestStatusPageOfASecureDirectorAsksForAReadToken: over HTTPS the page and its script
// load without credentials, the data does not; the page says what the director wants,
// takes a read token, and then shows the cluster.
func TestStatusPageOfASecureDirectorAsksForAReadToken(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	d1 := startDirectorWith(t, "d1", key, "", Security{ReloadInterval: time.Hour})
	waitUntil(t, "d1 leads", 20*time.Second, d1.node().IsLeader)
	admin, err := pki.LoadBundle(AdminFiles(d1.d.opts.DataDir))
	if err != nil {
		t.Fatal(err)
	}
	adminAPI := api.NewTLSClient(pki.ClientConfig(admin, pki.Require(pki.RoleDirector)), d1.d.APIAddr())
	var tok *api.TokenCreated
	waitUntil(t, "a read token", 20*time.Second, func() bool {
		tok, err = adminAPI.CreateToken(context.Background(), api.TokenRequest{Role: "operator", Access: "read", TTL: "10m"})
		return err == nil
	})
	// The browser trusts exactly this director's key, as an operator who imported the
	// cluster's CA would trust its certificate.
	own, err := pki.LoadBundle(pki.DataDirFiles(d1.d.opts.DataDir))
	if err != nil {
		t.Fatal(err)
	}
	spki := sha256.Sum256(own.Leaf().RawSubjectPublicKeyInfo)
	ctx := newBrowser(t, chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])))

	url := "https://" + d1.d.APIAddr() + "/"
	nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	if err := chromedp.Do(nctx, chromedp.Navigate(url)); err != nil {
		cancel()
		t.Fatalf("load %s: %v", url, err)
	}
	cancel()
	const bound = 20 * time.Second
	header := `document.querySelector("header").innerText`
	waitDOM(t, ctx, "the token form, saying why", bound,
		`!document.querySelector("#login").hidden && document.querySelector("#login-why").textContent.includes("token")`, header)
	if ok, err := evaluate[bool](ctx, `document.querySelector("#director-rows").children.length === 0`); err != nil || !ok {
		t.Fatalf("the page shows directors before it has a credential (%v)", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = chromedp.Do(sctx, chromedp.SendKeys(chromedp.ID("token"), tok.Token), chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)))
	cancel()
	if err != nil {
		t.Fatalf("enter the token: %v", err)
	}
	waitDOM(t, ctx, "the cluster, read with the token", bound,
		`document.querySelector("#answered-by").dataset.director === "d1" && document.querySelector("#answer").dataset.state === "fresh" && document.querySelector("#login").hidden`, header)
	waitDOM(t, ctx, "d1 as leader", bound, fmt.Sprintf(`%s === "leader"`, attr(`#director-rows tr[data-director="d1"]`, "data-role")), header)
}

// evaluate runs one JavaScript expression in the page, bounded.
func evaluate[T any](ctx context.Context, expr string) (T, error) {
	ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ectx, chromedp.Evaluate[T](expr))
}
