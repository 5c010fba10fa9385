#!/usr/bin/env python3
"""ads-mitigator forwarder: a Flowmon ADS custom script that posts ADS events to ads-mitigator.

ADS writes the events on stdin (tab-separated standard / extended / IDS lines, or JSON lines); this
script forwards them UNCHANGED, so that parsing lives once, in the service. Python 3.6+ standard
library only: that is all the appliance has. Run with --help for the ADS configuration.
"""
import argparse
import http.client
import json
import os
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

VERSION = "1"
LOG_DIR = "/data/components/apps/log"  # "writable by ADS scripts" (reference 1.7)
LOG_NAME = "ads-mitigator-forwarder.log"
ATTEMPTS = 3
MAX_RETRY_AFTER = 10.0
TRUE_WORDS = ("1", "yes", "true", "on")
FALSE_WORDS = ("", "0", "no", "false", "off")

# ASCII only: on older appliances Python 3.6 may run with an ASCII locale.
ADS_SETUP = """\
Flowmon ADS configuration
  1. Settings > System Settings > Custom scripts > + NEW CUSTOM SCRIPT: upload this file and add
     the parameters below. ADS passes every parameter as  --name 'value'  (a value is mandatory,
     even for switches); parameters this script does not know are ignored.
       --url       https://<ads-mitigator host>:8080/v1/events                      (required)
       --secret    the service's webhook secret (WEBHOOK_SECRET)                     (required)
       --ca-file   PEM file of the CA that signed the service's certificate          (optional)
       --timeout   seconds per attempt, default 10                                   (optional)
       --insecure  yes = do not verify the service's TLS certificate; lab only       (optional)
     Standard or "extended version" output both work: the service detects the layout.
  2. Settings > Processing > Custom scripts > + NEW CUSTOM SCRIPT ACTION:
       Perspective: one that rates attacks on your network, e.g. "Security Issues".
       Minimum priority to be reported: the lowest priority that may block, e.g. Medium;
         the service applies its own minimum (MIN_PRIORITY) again, keep the two equal.
       Active: yes.
     Events run by hand (event detail > Initiate response) carry no priority; the service
     records them but does not block.

Behaviour
  Reads stdin until EOF and POSTs {"lines": [...], "forwarder": {...}} with
  "Authorization: Bearer <secret>". Retries connection errors, HTTP 5xx and 429 (3 attempts,
  1 s then 2 s apart, or Retry-After up to 10 s); 4xx is final; redirects are not followed.
  Exit status 0 only when the service answered 2xx (or stdin held no event), 1 otherwise.
  One log line per run goes to stderr and to
  /data/components/apps/log/ads-mitigator-forwarder.log. The secret is never logged, but
  ADS parameters are visible in the appliance's process list: use a dedicated secret.
"""


class UsageError(Exception):
    """Bad parameters: reported in the log line, exit status 1 (argparse alone would exit 2)."""


class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        raise UsageError(message)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would carry the Authorization header to wherever it points: treat it as failure."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Outcome(object):
    def __init__(self, status=None, error="", retry_after=None, final=False):
        self.status = status
        self.error = error
        self.retry_after = retry_after
        self.final = final

    @property
    def ok(self):
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self):
        return not self.final and (self.status is None or self.status == 429 or self.status >= 500)


def build_parser():
    parser = Parser(
        prog="flowmon-forwarder.py",
        description="Forward Flowmon ADS events from stdin to the ads-mitigator webhook.",
        epilog=ADS_SETUP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--url", required=True, help="webhook URL, e.g. https://host:8080/v1/events")
    parser.add_argument("--secret", required=True, help="webhook secret, sent as a Bearer token")
    parser.add_argument("--ca-file", help="PEM CA bundle to verify the service's certificate")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per attempt (default 10)")
    parser.add_argument("--insecure", default="no", help="yes: skip TLS certificate verification (lab only)")
    # Hidden, for tests: base back-off and log directory.
    parser.add_argument("--retry-delay", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--log-dir", default=LOG_DIR, help=argparse.SUPPRESS)
    return parser


def parse_args(argv):
    args, _unknown = build_parser().parse_known_args(argv)
    url = urllib.parse.urlsplit(args.url)
    if url.scheme.lower() not in ("http", "https") or not url.netloc:
        raise UsageError("--url must be an http:// or https:// URL")
    if not args.timeout > 0:
        raise UsageError("--timeout must be a positive number of seconds")
    if not args.retry_delay >= 0:
        raise UsageError("--retry-delay must not be negative")
    insecure = args.insecure.strip().lower()
    if insecure not in TRUE_WORDS + FALSE_WORDS:
        raise UsageError("--insecure must be yes or no")
    args.insecure = insecure in TRUE_WORDS
    return args


def read_lines(stream):
    """Lines without their terminator ("\\n" or "\\r\\n"); nothing else is touched, tabs and
    single-space fields included. Splits on "\\n" only: str.splitlines() would also split on
    characters such as \\x1c or \\u2028 that may occur inside an event detail."""
    text = stream.read().decode("utf-8", errors="replace")
    lines = (line[:-1] if line.endswith("\r") else line for line in text.split("\n"))
    return [line for line in lines if line != ""]


def build_opener(args):
    handlers = [NoRedirect()]
    if urllib.parse.urlsplit(args.url).scheme.lower() == "https":
        try:
            context = ssl.create_default_context(cafile=args.ca_file)
        except (OSError, ssl.SSLError) as error:
            raise UsageError("cannot use --ca-file: {}".format(error))
        if args.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers)


def send_once(opener, request, timeout):
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read()
            return Outcome(status=response.status)
    except urllib.error.HTTPError as error:
        body = error.read(300).decode("utf-8", errors="replace")
        return Outcome(
            status=error.code,
            error="HTTP {} {}".format(error.code, " ".join(body.split())),
            retry_after=parse_retry_after(error.headers.get("Retry-After")),
        )
    except urllib.error.URLError as error:
        return Outcome(error="connection failed: {}".format(error.reason), final=is_certificate_error(error.reason))
    except ssl.CertificateError as error:  # Python 3.6 raises a hostname mismatch unwrapped
        return Outcome(error="connection failed: {}".format(error), final=True)
    except (OSError, http.client.HTTPException) as error:  # timeouts, resets, truncated replies
        return Outcome(error="connection failed: {}".format(str(error) or type(error).__name__))


def is_certificate_error(reason):
    """A certificate that fails verification will not pass on the next attempt."""
    if isinstance(reason, ssl.CertificateError):  # hostname mismatch; 3.7+: any verification failure
        return True
    return isinstance(reason, ssl.SSLError) and getattr(reason, "reason", None) == "CERTIFICATE_VERIFY_FAILED"


def parse_retry_after(value):
    """Seconds to wait, from delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def backoff(outcome, attempt, base_delay):
    if outcome.retry_after is not None:
        return min(outcome.retry_after, MAX_RETRY_AFTER)
    return base_delay * (2 ** (attempt - 1))


def deliver(args, lines):
    """POST the lines, retrying what may succeed later. Returns (outcome, attempts)."""
    body = json.dumps({"lines": lines, "forwarder": {"version": VERSION, "host": socket.gethostname()}})
    request = urllib.request.Request(
        args.url,
        data=body.encode("utf-8"),
        method="POST",
        headers={
            "Authorization": "Bearer " + args.secret,
            "Content-Type": "application/json",
            "User-Agent": "ads-mitigator-forwarder/" + VERSION,
        },
    )
    opener = build_opener(args)
    attempt = 1
    while True:
        outcome = send_once(opener, request, args.timeout)
        if outcome.ok or not outcome.retryable or attempt >= ATTEMPTS:
            return outcome, attempt
        time.sleep(backoff(outcome, attempt, args.retry_delay))
        attempt += 1


def safe_url(url):
    """scheme://host:port/path: user info and query strings may hold credentials."""
    parts = urllib.parse.urlsplit(url)
    return "{}://{}{}".format(parts.scheme, parts.hostname or "", ":{}".format(parts.port) if parts.port else "") + parts.path


def write_log(message, secret, log_dir):
    if secret and len(secret) >= 4:
        message = message.replace(secret, "***")
    line = "{} ads-mitigator-forwarder[{}]: {}".format(
        datetime.now(timezone.utc).isoformat(timespec="seconds"), os.getpid(), message)
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    if os.path.isdir(log_dir) and os.access(log_dir, os.W_OK):
        try:
            with open(os.path.join(log_dir, LOG_NAME), "a", encoding="utf-8") as log:
                log.write(line + "\n")
        except OSError:
            pass  # stderr already has the line; logging must not change the exit status


def run(argv, stdin):
    """Returns (exit status, log message)."""
    args = parse_args(argv)
    lines = read_lines(stdin)
    if not lines:
        return 0, "result=ok lines=0 (nothing to forward)"
    started = time.time()
    outcome, attempts = deliver(args, lines)
    summary = "lines={} attempts={} elapsed={:.2f}s url={}".format(
        len(lines), attempts, time.time() - started, safe_url(args.url))
    if outcome.ok:
        return 0, "result=ok status={} {}".format(outcome.status, summary)
    return 1, "result=failed {} error={}".format(summary, json.dumps(outcome.error[:300]))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    # Read without argparse, so that even a usage error can neither log the secret nor lose the line.
    secret = option_value(argv, "--secret")
    try:
        status, message = run(argv, sys.stdin.buffer)
    except UsageError as error:
        status, message = 1, "result=failed usage error: {}".format(error)
    except Exception as error:  # noqa: BLE001 -- one log line per run, whatever happened
        status, message = 1, "result=failed internal error: {}: {}".format(type(error).__name__, error)
    write_log(message, secret, option_value(argv, "--log-dir") or LOG_DIR)
    return status


def option_value(argv, name):
    for index, arg in enumerate(argv):
        if arg == name and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(name + "="):
            return arg[len(name) + 1:]
    return None


if __name__ == "__main__":
    sys.exit(main())
