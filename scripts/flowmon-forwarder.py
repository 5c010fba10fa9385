#!/usr/bin/env python3
"""ads-mitigator forwarder: a Flowmon ADS custom script that posts ADS events to ads-mitigator.

ADS runs it once per event, when the event starts (never on its updates), so a delivery that fails is an
attack that is never blocked: this script therefore never drops a line it could still deliver. It forwards
the lines UNCHANGED (parsing lives once, in the service), split into requests within the service's limits,
signed with the shared secret (the secret itself never travels), retried with backoff, and whatever could
not be delivered is spooled to disk and re-delivered first by the next run. Python 3.6+ standard library
only: that is all the appliance has. Run with --help for the ADS configuration.
"""
import argparse
import collections
import errno
import fcntl
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

VERSION = "2"
LOG_DIR = "/data/components/apps/log"  # "writable by ADS scripts" (reference 1.7)
LOG_NAME = "ads-mitigator-forwarder.log"
SPOOL_DIR = "/data/components/apps/ads-mitigator/spool"
# The service's limits (src/api/limits.ts): items per request and body bytes; beyond them it answers 413.
MAX_EVENTS = 500
MAX_BODY_BYTES = 1024 * 1024
ATTEMPTS = 3
MAX_RETRY_AFTER = 10.0
DEFAULT_SPOOL_MAX_SIZE = "64M"
DEFAULT_SPOOL_MAX_AGE = "2d"
# Spooled segments handled per delivery batch (each holds a lock, i.e. a file descriptor).
SEGMENTS_PER_BATCH = 200
OUTCOMES = ("started", "extended", "unchanged", "duplicate", "ignored", "rejected", "malformed")
TRUE_WORDS = ("1", "yes", "true", "on")
FALSE_WORDS = ("", "0", "no", "false", "off")
SEGMENT_RE = re.compile(r"^seg-\d{13}-[0-9a-z-]+\.jsonl$")

# ASCII only: on older appliances Python 3.6 may run with an ASCII locale.
ADS_SETUP = """\
Flowmon ADS configuration
  1. Settings > System Settings > Custom scripts > + NEW CUSTOM SCRIPT: upload this file and add
     the parameters below. ADS passes every parameter as  --name 'value'  (a value is mandatory,
     even for switches); parameters this script does not know are ignored.
       --url         https://<ads-mitigator host>:8080/v1/events                    (required)
       --secret      the service's webhook secret (WEBHOOK_SECRET)                   (required)
       --ca-file     PEM file of the CA that signed the service's certificate        (optional)
       --client-cert PEM client certificate, when the service requires mutual TLS    (optional)
       --client-key  its private key (PEM)                                           (optional)
       --timeout     seconds per attempt, default 10                                 (optional)
       --auth        signature (default): HMAC-signed requests, the secret never
                     travels; bearer: send the secret as a Bearer token (old services)
       --spool-dir   where undelivered lines wait for the next run, default
                     /data/components/apps/ads-mitigator/spool (created when needed; it
                     must be writable by the user ADS runs scripts as -- if it is not, use
                     e.g. /data/components/apps/log/ads-mitigator-spool)
       --spool-max-size  bound of the spool, e.g. 64M (default), 512K, 1G
       --spool-max-age   spooled lines older than this are dropped, e.g. 2d (default), 12h
       --log-dir     default /data/components/apps/log (the log file goes there when the
                     directory exists and is writable; every line also goes to stderr)
       --insecure    yes = do not verify the service's TLS certificate; lab only  (optional)
     Standard or "extended version" output both work: the service detects the layout.
  2. Settings > Processing > Custom scripts > + NEW CUSTOM SCRIPT ACTION:
       Perspective: one that rates attacks on your network, e.g. "Security Issues".
       Minimum priority to be reported: the lowest priority that may block, e.g. Medium;
         the service applies its own minimum (MIN_PRIORITY) again, keep the two equal.
       Active: yes.
     Events run by hand (event detail > Initiate response) carry no priority; the service
     records them but does not block.

Behaviour
  ADS runs this script once per event, when the event starts, so a lost delivery is an attack
  never blocked. Each run:
  1. reads stdin until EOF (one line per event, forwarded unchanged);
  2. re-delivers the spool first, oldest first (lines older than --spool-max-age are dropped
     with a log line);
  3. POSTs {"lines": [...], "forwarder": {...}} in requests of at most 500 lines and 1 MiB
     (the service's limits); a 413 from the service splits the request in halves;
  4. signs each request: X-ADS-Timestamp: <unix seconds> and
     X-ADS-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>; the service
     refuses a timestamp more than 5 minutes from its clock, so keep the appliance on NTP;
  5. retries connection errors, timeouts, HTTP 408, 429 and 5xx (3 attempts, 1 s then 2 s apart,
     or Retry-After up to 10 s); redirects are never followed (they could carry the request
     elsewhere);
  6. spools what is still undelivered to --spool-dir; the next run delivers it. The service
     recognises an event it already has (answer "duplicate"), so nothing is blocked twice.
  When the service is unreachable, the run stops trying after the first failed request and
  spools the rest, so a run stays short during an outage.
  The spool is bounded by --spool-max-size: when full, the OLDEST spooled lines are dropped to
  make room for new ones (recent attacks matter most), with a WARNING log line. Concurrent runs
  are safe: each spool file is delivered by one run only (file locks), files are written
  atomically.

Exit status
  0  every line was delivered (the service answered for each event), or is spooled because the
     service was unreachable or busy (it will be delivered by a later run).
  1  something needs a person: a usage error; the service refused the credentials (HTTP 401:
     wrong --secret, or the appliance clock is more than 5 minutes off) or another answer no
     retry can change (404 wrong --url, 403, a redirect, an untrusted certificate) -- the lines
     are SPOOLED, not lost, and go out once the configuration is fixed; lines the service
     refused as malformed or too large; lines dropped because the spool was full or too old;
     or the spool could not be written.

Log
  One line per run, plus WARNING lines when lines are dropped, to stderr and to
  <log-dir>/ads-mitigator-forwarder.log:
    result=ok|spooled|failed lines=<read> replayed=<from the spool> requests= attempts=
    started= extended= unchanged= duplicate= ignored= rejected= malformed= spooled=<written
    to the spool> spool=<lines waiting> elapsed= url= [reasons={...}] [error="..."]
  reasons counts why events were ignored (the intake rule) or rejected (e.g. ip-private,
  ip-allowlisted) and why lines were malformed. The secret is never logged, but ADS parameters
  are visible in the appliance's process list: use a dedicated secret.
"""


class UsageError(Exception):
    """Bad parameters: reported in the log line, exit status 1 (argparse alone would exit 2)."""


class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        raise UsageError(message)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would carry the request to wherever it points: treat it as failure."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Outcome(object):
    """What one request (after its retries) came to."""

    def __init__(self, status=None, error="", retry_after=None, final=False, reply=None):
        self.status = status
        self.error = error
        self.retry_after = retry_after
        self.final = final  # no retry in this run can change it (certificate errors)
        self.reply = reply  # the parsed JSON body
        self.attempts = 0

    @property
    def ok(self):
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self):
        if self.final:
            return False
        return self.status is None or self.status in (408, 429) or self.status >= 500

    @property
    def transient(self):
        """An outage or overload: spooling is the expected answer, not a misconfiguration."""
        return self.retryable


# ------------------------------------------------------------------------------------------ parameters

def build_parser():
    parser = Parser(
        prog="flowmon-forwarder.py",
        description="Forward Flowmon ADS events from stdin to the ads-mitigator webhook.",
        epilog=ADS_SETUP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--url", required=True, help="webhook URL, e.g. https://host:8080/v1/events")
    parser.add_argument("--secret", required=True, help="webhook secret (signs the requests; never sent unless --auth bearer)")
    parser.add_argument("--ca-file", help="PEM CA bundle to verify the service's certificate")
    parser.add_argument("--client-cert", help="PEM client certificate for mutual TLS")
    parser.add_argument("--client-key", help="PEM private key of --client-cert")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per attempt (default 10)")
    parser.add_argument("--auth", default="signature", help="signature (default) or bearer")
    parser.add_argument("--spool-dir", default=SPOOL_DIR, help="undelivered lines wait here (default {})".format(SPOOL_DIR))
    parser.add_argument("--spool-max-size", default=DEFAULT_SPOOL_MAX_SIZE, help="spool bound, e.g. 64M (default), 512K")
    parser.add_argument("--spool-max-age", default=DEFAULT_SPOOL_MAX_AGE, help="drop spooled lines older than this, e.g. 2d (default), 12h")
    parser.add_argument("--log-dir", default=LOG_DIR, help="log directory (default {})".format(LOG_DIR))
    parser.add_argument("--insecure", default="no", help="yes: skip TLS certificate verification (lab only)")
    # Hidden, for tests: base back-off.
    parser.add_argument("--retry-delay", type=float, default=1.0, help=argparse.SUPPRESS)
    return parser


def parse_size(text):
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?b?\s*$", text, re.IGNORECASE)
    if not match:
        raise UsageError("--spool-max-size must be a size such as 64M, 512K or 1G")
    factor = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[match.group(2).lower()]
    return int(float(match.group(1)) * factor)


def parse_age(text):
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", text, re.IGNORECASE)
    if not match:
        raise UsageError("--spool-max-age must be a duration such as 2d, 12h, 30m or 90s")
    factor = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2).lower()]
    return float(match.group(1)) * factor


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
    args.auth = args.auth.strip().lower()
    if args.auth not in ("signature", "bearer"):
        raise UsageError("--auth must be signature or bearer")
    if bool(args.client_cert) != bool(args.client_key):
        raise UsageError("--client-cert and --client-key go together")
    args.spool_max_bytes = parse_size(args.spool_max_size)
    args.spool_max_age_s = parse_age(args.spool_max_age)
    if args.spool_max_bytes <= 0 or args.spool_max_age_s <= 0:
        raise UsageError("--spool-max-size and --spool-max-age must be positive")
    return args


def read_lines(stream):
    """Lines without their terminator ("\\n" or "\\r\\n"); nothing else is touched, tabs and
    single-space fields included. Splits on "\\n" only: str.splitlines() would also split on
    characters such as \\x1c or \\u2028 that may occur inside an event detail."""
    text = stream.read().decode("utf-8", errors="replace")
    lines = (line[:-1] if line.endswith("\r") else line for line in text.split("\n"))
    return [line for line in lines if line != ""]


# ---------------------------------------------------------------------------------------------- HTTP

class Client(object):
    """POSTs bodies to the webhook, signed (or with the bearer secret), retrying what may pass later."""

    def __init__(self, args):
        self.args = args
        self.host = socket.gethostname()
        self.opener = self._opener()

    def _opener(self):
        handlers = [NoRedirect()]
        if urllib.parse.urlsplit(self.args.url).scheme.lower() == "https":
            try:
                context = ssl.create_default_context(cafile=self.args.ca_file)
            except (OSError, ssl.SSLError) as error:
                raise UsageError("cannot use --ca-file: {}".format(error))
            if self.args.client_cert:
                try:
                    context.load_cert_chain(self.args.client_cert, self.args.client_key)
                except (OSError, ssl.SSLError) as error:
                    raise UsageError("cannot use --client-cert/--client-key: {}".format(error))
            if self.args.insecure:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            handlers.append(urllib.request.HTTPSHandler(context=context))
        return urllib.request.build_opener(*handlers)

    def body(self, lines):
        return json.dumps({"lines": lines, "forwarder": {"version": VERSION, "host": self.host}}).encode("utf-8")

    def envelope_size(self):
        return len(self.body([]))

    def headers(self, body):
        headers = {"Content-Type": "application/json", "User-Agent": "ads-mitigator-forwarder/" + VERSION}
        if self.args.auth == "bearer":
            headers["Authorization"] = "Bearer " + self.args.secret
        else:
            timestamp = str(int(time.time()))
            digest = hmac.new(self.args.secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
            headers["X-ADS-Timestamp"] = timestamp
            headers["X-ADS-Signature"] = "sha256=" + digest
        return headers

    def post(self, body):
        """One request with its retries; every attempt is signed afresh (the timestamp moves)."""
        attempt = 1
        while True:
            request = urllib.request.Request(self.args.url, data=body, method="POST", headers=self.headers(body))
            outcome = send_once(self.opener, request, self.args.timeout)
            outcome.attempts = attempt
            if outcome.ok or not outcome.retryable or attempt >= ATTEMPTS:
                return outcome
            time.sleep(backoff(outcome, attempt, self.args.retry_delay))
            attempt += 1


def send_once(opener, request, timeout):
    try:
        with opener.open(request, timeout=timeout) as response:
            return Outcome(status=response.status, reply=parse_json(response.read()))
    except urllib.error.HTTPError as error:
        raw = error.read(4000)
        reply = parse_json(raw)
        return Outcome(
            status=error.code,
            error="HTTP {} {}".format(error.code, " ".join(raw[:300].decode("utf-8", errors="replace").split())),
            retry_after=parse_retry_after(error.headers.get("Retry-After")),
            reply=reply,
        )
    except urllib.error.URLError as error:
        return Outcome(error="connection failed: {}".format(error.reason), final=is_certificate_error(error.reason))
    except ssl.CertificateError as error:  # Python 3.6 raises a hostname mismatch unwrapped
        return Outcome(error="connection failed: {}".format(error), final=True)
    except (OSError, http.client.HTTPException) as error:  # timeouts, resets, truncated replies
        return Outcome(error="connection failed: {}".format(str(error) or type(error).__name__))


def parse_json(raw):
    try:
        value = json.loads(raw.decode("utf-8"))
        return value if isinstance(value, dict) else None
    except (ValueError, UnicodeDecodeError):
        return None


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


# ---------------------------------------------------------------------------------------------- stats

class Stats(object):
    """What the run did, for its log line."""

    def __init__(self):
        self.lines = 0
        self.replayed = 0
        self.requests = 0
        self.attempts = 0
        self.counts = collections.OrderedDict((name, 0) for name in OUTCOMES)
        self.reasons = {"ignored": collections.Counter(), "rejected": collections.Counter(), "malformed": collections.Counter()}
        self.spooled = 0
        self.dropped = 0  # lines lost: too large, malformed, spool full or expired
        self.warnings = []

    def record_reply(self, reply):
        """A 2xx reply of the webhook: per-event outcomes and, for the last two kinds, why."""
        reply = reply or {}
        summary = reply.get("summary") if isinstance(reply.get("summary"), dict) else {}
        for name in OUTCOMES:
            value = summary.get(name)
            if isinstance(value, int):
                self.counts[name] += value
        for event in reply.get("events") or []:
            if not isinstance(event, dict):
                continue
            if event.get("outcome") == "ignored":
                self.reasons["ignored"][str(event.get("rule") or "unknown")] += 1
            for ip in event.get("ips") or []:
                if isinstance(ip, dict) and ip.get("outcome") == "rejected":
                    self.reasons["rejected"][str(ip.get("code") or "unknown")] += 1
        for error in reply.get("errors") or []:
            if isinstance(error, dict):
                self.reasons["malformed"][short_reason(error.get("message"))] += 1

    def record_refused(self, count, outcome):
        """A 400: the service read the request and found no event in it. Those lines are lost."""
        error = (outcome.reply or {}).get("error") or {}
        details = error.get("details") if isinstance(error.get("details"), dict) else {}
        self.counts["malformed"] += count
        items = [e for e in details.get("errors") or [] if isinstance(e, dict)]
        if items:
            for item in items:
                self.reasons["malformed"][short_reason(item.get("message"))] += 1
            if count > len(items):
                self.reasons["malformed"]["not listed"] += count - len(items)
        else:
            self.reasons["malformed"][short_reason(error.get("message") or outcome.error)] += count
        self.dropped += count

    def warn(self, message):
        self.warnings.append("WARNING " + message)

    def reasons_json(self):
        reasons = dict((kind, dict(counter)) for kind, counter in self.reasons.items() if counter)
        return json.dumps(reasons, sort_keys=True, separators=(",", ":")) if reasons else ""


def short_reason(message):
    """A reason to count: the parser's message without its numbers (line indices, event ids)."""
    text = " ".join(str(message or "unknown").split())
    return re.sub(r"\d+", "#", text)[:80]


# ---------------------------------------------------------------------------------------------- delivery

class Record(object):
    """One line, when it was first read (for the age limit), and where it is spooled (None: stdin)."""

    __slots__ = ("line", "first_seen", "segment")

    def __init__(self, line, first_seen, segment=None):
        self.line = line
        self.first_seen = first_seen
        self.segment = segment


def chunks(client, records):
    """Requests within the service's limits: at most MAX_EVENTS lines and MAX_BODY_BYTES bytes each."""
    envelope = client.envelope_size()
    chunk, size = [], envelope
    for record in records:
        cost = len(json.dumps(record.line)) + 2  # ASCII-escaped, plus the ", " separator
        if chunk and (len(chunk) >= MAX_EVENTS or size + cost > MAX_BODY_BYTES):
            yield chunk
            chunk, size = [], envelope
        chunk.append(record)
        size += cost
    if chunk:
        yield chunk


def deliver(client, records, stats):
    """Sends the records in order. Returns (undelivered records, the Outcome that stopped delivery or None).
    Lines the service refuses for their content (400) or their size (413 for a single line) are counted
    and dropped: no later run could deliver them either."""
    queue = collections.deque(chunks(client, records))
    while queue:
        chunk = queue.popleft()
        body = client.body([r.line for r in chunk])
        too_large = len(body) > MAX_BODY_BYTES
        outcome = None
        if not too_large:
            outcome = client.post(body)
            stats.requests += 1
            stats.attempts += outcome.attempts
            too_large = outcome.status == 413
        if too_large:
            if len(chunk) == 1:
                stats.dropped += 1
                stats.counts["malformed"] += 1
                stats.reasons["malformed"]["line larger than the service accepts"] += 1
                stats.warn("dropped a line of {} bytes: larger than the service accepts in one request".format(len(chunk[0].line)))
                continue
            middle = len(chunk) // 2
            queue.appendleft(chunk[middle:])
            queue.appendleft(chunk[:middle])
            continue
        if outcome.ok:
            stats.record_reply(outcome.reply)
            continue
        if outcome.status == 400:
            stats.record_refused(len(chunk), outcome)
            continue
        pending = list(chunk)
        for rest in queue:
            pending.extend(rest)
        return pending, outcome
    return [], None


# ---------------------------------------------------------------------------------------------- spool

class Spool(object):
    """Undelivered lines on disk, in segment files named seg-<first seen, ms>-<unique>.jsonl so that
    sorting by name is oldest first. A segment is written once, atomically (temporary file, fsync,
    rename); a run that delivers it holds an exclusive flock on it, so two overlapping runs never send
    the same segment, and a run that dies releases its locks with it. Adding a segment (and trimming the
    spool to its bound) happens under the directory's .lock."""

    def __init__(self, directory, max_bytes, max_age_s, stats):
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.stats = stats

    def names(self):
        try:
            return sorted(name for name in os.listdir(self.directory) if SEGMENT_RE.match(name))
        except OSError as error:
            if error.errno == errno.ENOENT:
                return []
            raise

    def path(self, name):
        return os.path.join(self.directory, name)

    def try_lock(self, name):
        """An open, exclusively locked segment that still exists, or None (gone, or another run has it)."""
        try:
            handle = open(self.path(name), "rb")
        except OSError as error:
            if error.errno == errno.ENOENT:
                return None
            raise
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            handle.close()
            if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return None
            raise
        if os.fstat(handle.fileno()).st_nlink == 0:  # delivered (or rewritten) by a run that held it before us
            handle.close()
            return None
        return handle

    def claim(self, now):
        """Batches of (segment name, locked handle, records), oldest first; expired lines are dropped."""
        batch = []
        for name in self.names():
            handle = self.try_lock(name)
            if handle is None:
                continue
            records = read_segment(handle, name)
            fresh = [r for r in records if now - r.first_seen <= self.max_age_s]
            if len(fresh) < len(records):
                expired = len(records) - len(fresh)
                self.stats.dropped += expired
                self.stats.warn("dropped {} spooled line(s) older than --spool-max-age {}s (first seen {})".format(
                    expired, int(self.max_age_s), iso(min(r.first_seen for r in records))))
                if not fresh:
                    os.unlink(self.path(name))
                # else settle() rewrites the segment with what is left: only the lock holder touches its path
            if not fresh:
                handle.close()
                continue
            batch.append((name, handle, fresh))
            if len(batch) >= SEGMENTS_PER_BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def settle(self, batch, undelivered):
        """After a delivery: a segment whose lines all went out is removed, one with lines left is
        rewritten with those; then its lock is released."""
        left = collections.defaultdict(list)
        for record in undelivered:
            left[record.segment].append(record)
        for name, handle, _records in batch:
            try:
                if left.get(name):
                    self.rewrite(name, left[name])
                else:
                    os.unlink(self.path(name))
            finally:
                handle.close()

    def rewrite(self, name, records):
        """Replaces a segment we hold with fewer records, atomically (same name: same place in the order)."""
        self.write_atomically(name, records)

    def add(self, records):
        """Spools records (oldest first) as one new segment, trimming the spool to its bound first."""
        makedirs(self.directory)
        with open(self.path(".lock"), "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            data = encode_records(records)
            room = self.max_bytes - self.size()
            if len(data) > room:
                room += self.drop_oldest(len(data) - room)
            if len(data) > room:  # the new lines alone exceed the bound: keep the newest of them
                sizes = [len(encode_records([r])) for r in records]
                first = 0
                while first < len(records) and sum(sizes[first:]) > room:
                    first += 1
                kept = records[first:]
                lost = first
                self.stats.dropped += lost
                self.stats.warn("spool full ({} bytes, --spool-max-size): dropped {} new line(s), the oldest of this run".format(self.max_bytes, lost))
                records, data = kept, encode_records(kept)
            if records:
                name = "seg-{:013d}-{}-{}-{:08x}.jsonl".format(
                    int(records[0].first_seen * 1000), os.getpid(), int(time.time() * 1e6), random.getrandbits(32))
                self.write_atomically(name, records, data)
                self.stats.spooled += len(records)

    def size(self):
        total = 0
        for name in self.names():
            try:
                total += os.stat(self.path(name)).st_size
            except OSError:
                pass
        return total

    def drop_oldest(self, needed):
        """Removes the oldest segments no other run holds until `needed` bytes are free; returns bytes freed."""
        freed, lines = 0, 0
        for name in self.names():
            if freed >= needed:
                break
            handle = self.try_lock(name)
            if handle is None:
                continue
            try:
                size = os.fstat(handle.fileno()).st_size
                lines += len(read_segment(handle, name))
                os.unlink(self.path(name))
                freed += size
            finally:
                handle.close()
        if lines:
            self.stats.dropped += lines
            self.stats.warn("spool full ({} bytes, --spool-max-size): dropped the {} oldest spooled line(s) to keep the newest".format(self.max_bytes, lines))
        return freed

    def write_atomically(self, name, records, data=None):
        data = encode_records(records) if data is None else data
        temporary = self.path(".tmp-{}-{:08x}".format(os.getpid(), random.getrandbits(32)))
        try:
            with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path(name))
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
        fsync_directory(self.directory)

    def pending_lines(self):
        total = 0
        for name in self.names():
            try:
                with open(self.path(name), "rb") as handle:
                    total += handle.read().count(b"\n")
            except OSError:
                pass
        return total


def encode_records(records):
    return b"".join(
        (json.dumps({"t": round(r.first_seen, 3), "line": r.line}) + "\n").encode("utf-8") for r in records)


def read_segment(handle, name):
    handle.seek(0)
    records = []
    for raw in handle.read().split(b"\n"):
        if not raw:
            continue
        try:
            item = json.loads(raw.decode("utf-8"))
            records.append(Record(str(item["line"]), float(item["t"]), name))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            continue  # segments are written atomically: a bad line is foreign, not ours
    return records


def makedirs(directory):
    try:
        os.makedirs(directory, mode=0o700)
    except OSError as error:
        if error.errno != errno.EEXIST:
            raise


def fsync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def iso(seconds):
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------- run

def safe_url(url):
    """scheme://host:port/path: user info and query strings may hold credentials."""
    parts = urllib.parse.urlsplit(url)
    return "{}://{}{}".format(parts.scheme, parts.hostname or "", ":{}".format(parts.port) if parts.port else "") + parts.path


def run(argv, stdin):
    """Returns (exit status, [log lines])."""
    started = time.time()
    args = parse_args(argv)
    lines = read_lines(stdin)
    stats = Stats()
    stats.lines = len(lines)
    client = Client(args)
    spool = Spool(args.spool_dir, args.spool_max_bytes, args.spool_max_age_s, stats)
    stopped = None  # the Outcome that made this run stop sending
    spool_error = None

    # 1. The spool first, oldest first: those events waited longest.
    try:
        for batch in spool.claim(started):
            records = [record for _name, _handle, segment in batch for record in segment]
            try:
                undelivered, stopped = deliver(client, records, stats)
            except BaseException:
                spool.settle(batch, records)  # keep them all
                raise
            stats.replayed += len(records) - len(undelivered)
            spool.settle(batch, undelivered)
            if stopped is not None:
                break
    except OSError as error:
        spool_error = "cannot read the spool {}: {}".format(args.spool_dir, error)

    # 2. This run's lines; straight to the spool when the service just failed us.
    fresh = [Record(line, started) for line in lines]
    if stopped is None and fresh:
        try:
            fresh, stopped = deliver(client, fresh, stats)
        except Exception:
            spool.add(fresh)  # whatever went wrong, the lines are kept for the next run
            raise
    if fresh:
        try:
            spool.add(fresh)
        except OSError as error:
            stats.dropped += len(fresh)
            spool_error = "cannot spool {} line(s) to {}: {}".format(len(fresh), args.spool_dir, error)

    try:
        waiting = spool.pending_lines()
    except OSError:
        waiting = "?"
    misconfigured = stopped is not None and not stopped.transient
    failed = misconfigured or stats.dropped > 0 or spool_error is not None
    result = "failed" if failed else ("spooled" if stopped is not None else "ok")
    fields = ["result=" + result, "lines={}".format(stats.lines), "replayed={}".format(stats.replayed),
              "requests={}".format(stats.requests), "attempts={}".format(stats.attempts)]
    fields += ["{}={}".format(name, count) for name, count in stats.counts.items()]
    fields += ["spooled={}".format(stats.spooled), "spool={}".format(waiting),
               "elapsed={:.2f}s".format(time.time() - started), "url=" + safe_url(args.url)]
    reasons = stats.reasons_json()
    if reasons:
        fields.append("reasons=" + reasons)
    errors = []
    if stopped is not None:
        errors.append(describe_failure(stopped))
    if spool_error:
        errors.append(spool_error)
    if stats.dropped and not errors:
        errors.append("{} line(s) not delivered and not spooled".format(stats.dropped))
    if errors:
        fields.append("error=" + json.dumps("; ".join(errors)[:600]))
    return (1 if failed else 0), stats.warnings + [" ".join(fields)]


def describe_failure(outcome):
    text = outcome.error[:300]
    if outcome.status == 401:
        text += " (check --secret, and that the appliance clock is within 5 minutes of the service's)"
    elif outcome.status is not None and 300 <= outcome.status < 400:
        text += " (redirects are not followed: point --url at the service itself)"
    elif outcome.transient:
        text += " (the service was unavailable: lines spooled for the next run)"
    return text


def write_log(lines, secret, log_dir):
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    text = ""
    for message in lines:
        if secret and len(secret) >= 4:
            message = message.replace(secret, "***")
        text += "{} ads-mitigator-forwarder[{}]: {}\n".format(stamp, os.getpid(), message)
    sys.stderr.write(text)
    sys.stderr.flush()
    if os.path.isdir(log_dir) and os.access(log_dir, os.W_OK):
        try:
            with open(os.path.join(log_dir, LOG_NAME), "a", encoding="utf-8") as log:
                log.write(text)
        except OSError:
            pass  # stderr already has the lines; logging must not change the exit status


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    # Read without argparse, so that even a usage error can neither log the secret nor lose the line.
    secret = option_value(argv, "--secret")
    try:
        status, lines = run(argv, sys.stdin.buffer)
    except UsageError as error:
        status, lines = 1, ["result=failed usage error: {}".format(error)]
    except Exception as error:  # noqa: BLE001 -- one log line per run, whatever happened
        status, lines = 1, ["result=failed internal error: {}: {}".format(type(error).__name__, error)]
    write_log(lines, secret, option_value(argv, "--log-dir") or LOG_DIR)
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
