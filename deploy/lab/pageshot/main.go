// Command pageshot saves a screenshot of a raftlvs status page with headless Chromium,
// once the page shows a fresh answer and its timeline: `make demo` takes the page of its
// lab cluster with it, through a port of the VM forwarded to the host's loopback
// (deploy/lab/README.md, "The status page").
//
//	pageshot -url https://127.0.0.1:PORT/ -token TOKEN -ca-base64 CA -out FILE.png [-chromium PATH] [-wait 90s]
//
// A secure director's page asks for a read token, which pageshot types in as an operator
// would; the browser is told to trust exactly the director's key, once pageshot has
// verified its certificate against the cluster's CA (the certificate names the
// director's own address, not the forwarded loopback port).
package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"time"

	"github.com/chromedp/chromedp"
)

func main() {
	page := flag.String("url", "", "the status page")
	out := flag.String("out", "", "the PNG file to write")
	path := flag.String("chromium", "", "the browser (default: chromium on PATH)")
	wait := flag.Duration("wait", 90*time.Second, "how long the page may take to show a fresh answer")
	token := flag.String("token", "", "a read token, typed into the page's form when it asks")
	ca := flag.String("ca-base64", "", "the cluster's CA certificates (PEM, base64) that an https director must chain to")
	flag.Parse()
	if *page == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: pageshot -url URL [-token TOKEN -ca-base64 CA] -out FILE.png [-chromium PATH] [-wait 90s]")
		os.Exit(2)
	}
	var extra []chromedp.ExecAllocatorOption
	if u, err := url.Parse(*page); err == nil && u.Scheme == "https" {
		pin, err := verifiedPin(u.Host, *ca)
		if err != nil {
			fmt.Fprintf(os.Stderr, "pageshot: %v\n", err)
			os.Exit(1)
		}
		extra = append(extra, chromedp.Flag("ignore-certificate-errors-spki-list", pin))
	}
	if err := shoot(*page, *out, *path, *token, *wait, extra...); err != nil {
		fmt.Fprintf(os.Stderr, "pageshot: %v\n", err)
		os.Exit(1)
	}
}

// ready is true once the page has an answer less than three polls old and the timeline
// has come.
const ready = `document.querySelector("#answer").dataset.state === "fresh" && !!document.querySelector("#event-list li[data-kind]")`

// verifiedPin dials the director at addr, verifies its certificate chains to the CA
// (any name: the forwarded port is not its address) as a server certificate, and returns
// the base64 SHA-256 of its public key, the form Chromium's SPKI allow-list takes.
func verifiedPin(addr, caBase64 string) (string, error) {
	pem, err := base64.StdEncoding.DecodeString(caBase64)
	if err != nil {
		return "", fmt.Errorf("-ca-base64: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return "", errors.New("-ca-base64: no PEM certificate in it")
	}
	verify := func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the director sent no certificate")
		}
		opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(opts)
		return err
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second},
		Config: &tls.Config{InsecureSkipVerify: true, VerifyConnection: verify}} // verify replaces the name check
	conn, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("verify the director at %s: %w", addr, err)
	}
	defer conn.Close()
	leaf := conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// login is true once the page shows its token form.
const login = `!document.querySelector("#login").hidden`

func shoot(page, out, path, token string, wait time.Duration, extra ...chromedp.ExecAllocatorOption) error {
	if path == "" {
		p, err := exec.LookPath("chromium")
		if err != nil {
			return fmt.Errorf("no chromium on PATH (apt-get install chromium): %w", err)
		}
		path = p
	}
	profile, err := os.MkdirTemp("", "pageshot-profile-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(profile)
	// The flags the closed network of the build machines needs: without the
	// background-networking ones Chromium's connections are refused many at a time.
	opts := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile), chromedp.WindowSize(1400, 1000)}, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first action starts the browser and must not run under a timeout.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			return fmt.Errorf("start %s: %w", path, err)
		}
	case <-time.After(time.Minute):
		return fmt.Errorf("%s did not start within a minute", path)
	}
	deadline := time.Now().Add(wait)
	nctx, ncancel := context.WithTimeout(ctx, wait)
	err = chromedp.Do(nctx, chromedp.Navigate(page))
	ncancel()
	if err != nil {
		return fmt.Errorf("load %s: %w", page, err)
	}
	typed := false
	for {
		if !typed && token != "" {
			lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
			asks, err := chromedp.Run(lctx, chromedp.Evaluate[bool](login))
			if err == nil && asks {
				err = chromedp.Do(lctx, chromedp.SendKeys(chromedp.ID("token"), token),
					chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)))
				typed = err == nil
			}
			lcancel()
		}
		ectx, ecancel := context.WithTimeout(ctx, 10*time.Second)
		ok, err := chromedp.Run(ectx, chromedp.Evaluate[bool](ready))
		ecancel()
		if err == nil && ok {
			break
		}
		if time.Now().After(deadline) {
			return errors.Join(fmt.Errorf("%s did not show a fresh answer within %s", page, wait), err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	return os.WriteFile(out, png, 0o644)
}
