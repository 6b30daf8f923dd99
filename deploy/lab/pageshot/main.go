// Command pageshot saves a screenshot of a raftlvs status page with headless Chromium,
// once the page shows a fresh answer and its timeline: `make demo` takes the page of its
// lab cluster with it, through a port of the VM forwarded to the host's loopback
// (deploy/lab/README.md, "The status page").
//
//	pageshot -url http://127.0.0.1:PORT/ -out FILE.png [-chromium PATH] [-wait 90s]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/chromedp/chromedp"
)

func main() {
	url := flag.String("url", "", "the status page")
	out := flag.String("out", "", "the PNG file to write")
	path := flag.String("chromium", "", "the browser (default: chromium on PATH)")
	wait := flag.Duration("wait", 90*time.Second, "how long the page may take to show a fresh answer")
	flag.Parse()
	if *url == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: pageshot -url URL -out FILE.png [-chromium PATH] [-wait 90s]")
		os.Exit(2)
	}
	if err := shoot(*url, *out, *path, *wait); err != nil {
		fmt.Fprintf(os.Stderr, "pageshot: %v\n", err)
		os.Exit(1)
	}
}

// ready is true once the page has an answer less than three polls old and the timeline
// has come.
const ready = `document.querySelector("#answer").dataset.state === "fresh" && !!document.querySelector("#event-list li[data-kind]")`

func shoot(url, out, path string, wait time.Duration) error {
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
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile), chromedp.WindowSize(1400, 1000))
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
	err = chromedp.Do(nctx, chromedp.Navigate(url))
	ncancel()
	if err != nil {
		return fmt.Errorf("load %s: %w", url, err)
	}
	for {
		ectx, ecancel := context.WithTimeout(ctx, 10*time.Second)
		ok, err := chromedp.Run(ectx, chromedp.Evaluate[bool](ready))
		ecancel()
		if err == nil && ok {
			break
		}
		if time.Now().After(deadline) {
			return errors.Join(fmt.Errorf("%s did not show a fresh answer within %s", url, wait), err)
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
