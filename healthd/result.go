package healthd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"time"
)

// Result is the outcome of one check.
type Result struct {
	Up bool
	// Reason is the operator's one-line answer: "HTTP 503", "connect: connection
	// refused", "timeout after 1s (read the body)", "ICMP port unreachable".
	Reason string
	// Err is nil when Up; otherwise a *Failure, classified with errors.Is against
	// ErrTimeout, ErrRefused and the other classes below.
	Err error
	// At is when the check started, Latency how long it took.
	At      time.Time
	Latency time.Duration
	// Weight is the weight an exec check with DynamicWeight asked for (HasWeight).
	Weight    int
	HasWeight bool
}

// Classes of failure, for errors.Is on Result.Err.
var (
	ErrTimeout     = errors.New("timeout")            // the check's deadline passed
	ErrCanceled    = errors.New("canceled")           // the caller gave up (the scheduler stopped)
	ErrRefused     = errors.New("refused")            // TCP reset on connect, ICMP port unreachable
	ErrUnreachable = errors.New("unreachable")        // no route, host or network unreachable
	ErrConnection  = errors.New("connection failed")  // reset, closed early, any other socket error
	ErrTLS         = errors.New("TLS failed")         // handshake or certificate
	ErrStatus      = errors.New("unexpected status")  // HTTP status, DNS rcode, SMTP reply code
	ErrContent     = errors.New("unexpected content") // body regex or digest, UDP reply
	ErrProtocol    = errors.New("protocol error")     // a reply that is not the protocol's
	ErrExit        = errors.New("command failed")     // exec: a non-zero exit, a signal
	ErrPolicy      = errors.New("refused by policy")  // exec: the command is outside the allowed directory
	ErrBadCheck    = errors.New("check cannot run")   // the spec cannot run here (bad regex, no port)
)

// Failure is why a check failed: its class, the operator's reason, and the cause.
type Failure struct {
	Kind   error // one of the classes above
	Reason string
	Cause  error // the underlying error, if any
}

func (f *Failure) Error() string { return f.Reason }

// Unwrap lets errors.Is see both the class and the cause (syscall.ECONNREFUSED, …).
func (f *Failure) Unwrap() []error {
	if f.Cause == nil {
		return []error{f.Kind}
	}
	return []error{f.Kind, f.Cause}
}

func up(reason string) Result { return Result{Up: true, Reason: reason} }

func down(kind error, cause error, format string, args ...any) Result {
	reason := fmt.Sprintf(format, args...)
	return Result{Reason: reason, Err: &Failure{Kind: kind, Reason: reason, Cause: cause}}
}

// failed classifies an I/O error of one step of a check ("connect", "read the body") into
// a result. The deadline is the check's total timeout, for the reason's text.
func failed(ctx context.Context, step string, err error, timeout time.Duration) Result {
	var certErr *tls.CertificateVerificationError
	var alert tls.AlertError
	var recordErr tls.RecordHeaderError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidCert x509.CertificateInvalidError
	switch {
	case errors.Is(err, context.Canceled) || ctx.Err() == context.Canceled:
		return down(ErrCanceled, err, "canceled (%s)", step)
	case errors.Is(err, syscall.ECONNREFUSED):
		return down(ErrRefused, err, "%s: connection refused", step)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EHOSTDOWN), errors.Is(err, syscall.ENETDOWN):
		return down(ErrUnreachable, err, "%s: %s", step, describe(err))
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		ctx.Err() == context.DeadlineExceeded:
		return down(ErrTimeout, err, "timeout after %v (%s)", timeout, step)
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostErr),
		errors.As(err, &invalidCert), errors.As(err, &alert), errors.As(err, &recordErr):
		return down(ErrTLS, err, "TLS: %s", describe(err))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return down(ErrConnection, err, "%s: connection closed by the server", step)
	}
	return down(ErrConnection, err, "%s: %s", step, describe(err))
}

// describe is the innermost, shortest text of an error: "connection reset by peer"
// rather than "read tcp 10.0.0.1:4711->10.0.0.2:80: read: connection reset by peer".
func describe(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return describe(certErr.Err)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return describe(op.Err)
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return describe(ue.Err)
	}
	return err.Error()
}
