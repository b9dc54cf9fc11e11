"""runc-compatible logging (runc's --log and --log-format).

``--log FILE --log-format json`` writes one ``{"level","msg","time"}`` object
per line (keys sorted, as logrus does); ``text`` writes
``time="..." level=... msg="..."``.  Errors are written to the log and also
echoed to stderr when the log is not stderr.  Nothing is written on success
unless ``--debug``.  The stdlib ``logging`` package is not used: it costs
milliseconds of import on every call.

A caller may never read our stderr (a full pipe blocks write(2) forever), so
what goes to stderr is bounded: a message is cut to ``MSG_MAX`` bytes (a
line stays within a page, so it fits even a shrunk pipe), and all stderr
output of one command to ``STDERR_BUDGET`` bytes (half the default 64 KiB
pipe); past it, debug/warning lines are dropped, the error line still goes
out.  A ``--log`` file gets every line in full.
"""

from . import lightos as os  # os's calls without importing os (lightos.py)
import time

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
MSG_MAX = 1900
STDERR_BUDGET = 32 * 1024


def _cut(msg):
    data = msg.encode()
    if len(data) <= MSG_MAX:
        return msg
    return data[:MSG_MAX].decode(errors="ignore") + f"... ({len(data) - MSG_MAX} more bytes)"


def _now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%09dZ" % int((t % 1) * 1e9)


# A text log line is one line whatever the message holds: control
# characters are escaped as Go's strconv.Quote (logrus, hence runc) does.
_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F]}
_ESCAPES.update({ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def _quote(s):
    return '"' + s.translate(_ESCAPES) + '"'


class Logger:
    def __init__(self):
        self.path = None
        self.fmt = "text"
        self.min_level = _LEVELS["warning"]
        self._fd = None
        self._stderr_used = 0

    def configure(self, path=None, fmt="text", debug=False):
        self.path = path or None
        self.fmt = fmt
        self.min_level = _LEVELS["debug"] if debug else _LEVELS["warning"]

    def _line(self, level, msg):
        if self.fmt == "json":
            # Keys sorted like logrus' JSONFormatter; json.dumps only for the
            # message string itself (cheap: json.encoder is in the C accelerator).
            from json import dumps

            return '{"level":%s,"msg":%s,"time":%s}\n' % (dumps(level), dumps(msg), dumps(_now()))
        return "time=%s level=%s msg=%s\n" % (_quote(_now()), level, _quote(msg))

    def _to_stderr(self, line, always=False):
        data = line.encode()
        if not always and self._stderr_used + len(data) > STDERR_BUDGET - 2 * MSG_MAX - 256:
            return  # keep room for the error line
        self._stderr_used += len(data)
        os.write(2, data)

    def open_for_stages(self):
        """Open the --log file now, before a fork, when anything will be
        written to it: a stage that opened it by path later could be
        inside the container's mounts.  Returns its fd, or -1."""
        if self.path is None or self.min_level > _LEVELS["debug"]:
            return -1
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError:
                return -1
        return self._fd

    def fileno(self):
        return -1 if self._fd is None else self._fd

    def close_for_stage(self):
        """In a stage, before it waits or starts the user process: close the
        log file (a host file) and drop further messages instead of
        reopening it by path from inside the container."""
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd = None
        self.min_level = _LEVELS["error"] + 1

    def _write(self, line, level="debug"):
        if self.path is None:
            self._to_stderr(line, always=level == "error")
            return
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        os.write(self._fd, line.encode())

    def log(self, level, msg):
        if _LEVELS[level] < self.min_level:
            return
        try:
            self._write(self._line(level, msg if self.path else _cut(msg)), level)
        except OSError:
            pass

    def debug(self, msg):
        self.log("debug", msg)

    def info(self, msg):
        self.log("info", msg)

    def warning(self, msg):
        self.log("warning", msg)

    def error(self, msg):
        """The one error line of a failed command: to the log and to stderr."""
        self.log("error", msg)
        if self.path is not None:
            try:
                self._to_stderr(_cut(msg) + "\n", always=True)
            except OSError:
                pass


log = Logger()
