"""The hostile and faulty corpus, and the legitimate programs that naive limits would break.

Each case asserts the exact status and message. Behaviour runs over every backend (``backend``:
warm, cold, local); the cases marked ``container=True`` test an isolation guarantee and run over the
Docker backends only (``container``; see conftest.py). On the warm pool, every case is followed by a
health check: a canary that uses threads and a subprocess passes, no process is left but the
runner, /tmp, /dev/shm and /dev/mqueue are empty, no SysV IPC object survives, and the runner's
memory is stable. On the local backend the canary passes and no runner has a descendant or a file left.
"""

from __future__ import annotations

import fcntl
import re
import socket
import struct
from dataclasses import dataclass

import pytest

from codestill.schemas import ExecResult, IOCase, Limits, TestSuite
from tests.tools.sandbox.conftest import FAST


@dataclass(frozen=True)
class Case:
    id: str
    program: str | bytes
    tests: str | TestSuite
    status: str
    message: str = ""  # a regex the message must match (re.search); "" means the message is empty
    limits: Limits = FAST
    # An isolation guarantee only a container gives (conftest.py): run over the Docker backends only. On
    # the local backend such a program would reach the host (its network, files, PID 1, other processes).
    container: bool = False


F1 = "def f():\n    return 1\n"
F2 = "def f():\n    return 2\n"  # wrong: `failed` is the only right verdict
T1 = "assert f() == 1"

SIMILAR_WRONG = "def similar_elements(a, b):\n    return tuple(set(a) | set(b))\n"
SIMILAR_TESTS = ("def similar_elements(test_tup1, test_tup2):\n    return tuple(set(test_tup1) & set(test_tup2))\n"
                 "assert set(similar_elements((3, 4, 5, 6), (5, 7, 4, 10))) == set((4, 5))\n")

# A forged reply frame, as the runner would write it (magic, length, JSON): "all tests passed".
_FORGED = ("import json, struct\nbody = json.dumps({'op': 'result', 'id': 1, 'exit_code': 0, 'report': ''}).encode()\n"
           "FRAME = b'CSr1' + struct.pack('>I', len(body)) + body\n")
PROC_1 = ("import errno, os\n" + _FORGED + "def attempts():\n    out = []\n    for fd in (0, 1, 2):\n"
          "        for mode in ('wb', 'rb'):\n            try:\n"
          "                with open(f'/proc/1/fd/{fd}', mode, buffering=0) as fh:\n"
          "                    fh.write(FRAME) if mode == 'wb' else fh.read(1)\n"
          "                out.append('opened')\n            except OSError as e:\n"
          "                out.append(errno.errorcode[e.errno])\n"
          "    for path in ('/proc/1/fd', '/proc/1/task/1/fd'):\n        try:\n"
          "            out.append(os.listdir(path))\n        except OSError as e:\n"
          "            out.append(errno.errorcode[e.errno])\n"
          "    try:\n        open('/proc/1/mem', 'rb').close()\n        out.append('opened')\n"
          "    except OSError as e:\n        out.append(errno.errorcode[e.errno])\n"
          "    try:\n        os.readlink('/proc/1/fd/1')\n        out.append('read')\n"
          "    except OSError as e:\n        out.append(errno.errorcode[e.errno])\n    return out\n")
PIDFD = ("import ctypes, errno, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
         "def attempts():\n    out = []\n    pidfd = os.pidfd_open(1)\n    for fd in (0, 1):\n"
         "        got = libc.syscall(438, pidfd, fd, 0)  # pidfd_getfd\n"
         "        out.append('got' if got >= 0 else errno.errorcode[ctypes.get_errno()])\n"
         "    got = libc.ptrace(16, 1, 0, 0)  # PTRACE_ATTACH\n"
         "    out.append('attached' if got == 0 else errno.errorcode[ctypes.get_errno()])\n    return out\n")
# Run by a subprocess of the program: the harness (its parent, holding the report pipe on fd 3) and the runner.
_CHILD = ("import errno, os\nout = []\nfor pid in (os.getppid(), 1):\n    for fd in (1, 3):\n        try:\n"
          "            os.open(f'/proc/{pid}/fd/{fd}', os.O_WRONLY)\n            out.append('opened')\n"
          "        except OSError as e:\n            out.append(errno.errorcode[e.errno])\nprint(out)\n")
PARENT_FDS = (f"import subprocess, sys\nCHILD = {_CHILD!r}\n"
              "def attempts():\n    done = subprocess.run([sys.executable, '-c', CHILD], capture_output=True, text=True)\n"
              "    return eval(done.stdout)\n")
EVERY_FD = ("import os\n" + _FORGED + "for fd in range(1024):\n    if fd != 3:\n        try:\n"
            "            os.write(fd, FRAME)\n        except OSError:\n            pass\n"
            "assert sorted(int(n) for n in os.listdir('/proc/self/fd'))[:4] == [0, 1, 2, 3]\n" + F2)

# An object that says it equals anything; {meta} makes room for a metaclass.
YES = ("class Yes({meta}):\n    def __eq__(self, other):\n        return True\n    __hash__ = object.__hash__\n"
       "def f():\n    return Yes()\n")
UNTRUSTED = r"untrusted comparison: Yes\.__eq__ is defined by the program under test"
STDLIB_VALUES = (
    "import collections, dataclasses, datetime, decimal, enum, fractions\n"
    "Point = collections.namedtuple('Point', 'x y')\nclass Color(enum.IntEnum):\n    RED = 1\n"
    "class Word(str):\n    pass\n@dataclasses.dataclass\nclass P:\n    x: int\n"
    "def values():\n    d = collections.defaultdict(int)\n    d['a'] += 1\n"
    "    return (collections.Counter('aab'), collections.OrderedDict(a=1), d, decimal.Decimal('1.5'),\n"
    "            fractions.Fraction(1, 2), Point(1, 2), Color.RED, Word('a'), {1: 2}.keys(),\n"
    "            datetime.date(2020, 1, 1), P(1))\n")
STDLIB_TESTS = (
    "import datetime\nc, od, dd, dec, frac, point, color, word, keys, date, p = values()\n"
    "assert c == {'a': 2, 'b': 1} and od == {'a': 1} and dd == {'a': 1}\n"
    "assert dec == 1.5 and frac == 0.5 and point == (1, 2) and [point] == [(1, 2)] and color == 1\n"
    "assert word == 'a' and keys == {1} and date == datetime.date(2020, 1, 1) and p == P(1)\n")

CASES = [
    # -- processes
    Case("fork_bomb_python", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
         T1, "timeout", r"^time limit exceeded", container=True),
    Case("fork_bomb_shell", "import subprocess\nsubprocess.Popen(['bash', '-c', ':(){ :|:& };:'], "
         "stderr=subprocess.DEVNULL)\n" + F1, T1, "killed", r"^the program left \d+ process(es)? running", container=True),
    Case("child_spinning_after_parent_returns", "import subprocess, sys\n"
         "subprocess.Popen([sys.executable, '-c', 'while True: pass'])\n" + F1, T1, "killed",
         r"^the program left 1 process running"),
    Case("daemonised_double_fork", "import os, time\npid = os.fork()\nif pid == 0:\n    os.setsid()\n"
         "    if os.fork() == 0:\n        while True:\n            time.sleep(0.05)\n    os._exit(0)\n"
         "os.waitpid(pid, 0)\n" + F1, T1, "killed", r"^the program left 1 process running"),
    Case("fork_returning_into_harness", "import os\nos.fork()\n" + F1, T1, "killed",
         r"^the program left 1 process running"),
    Case("kill_pid1_and_everyone", "import os, signal\n"
         "for s in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGSTOP, signal.SIGUSR1):\n"
         "    os.kill(1, s)\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept ProcessLookupError:\n    pass\n" + F1,
         T1, "passed", container=True),
    Case("ten_thousand_threads", "import threading, time\nfor _ in range(10000):\n"
         "    threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n" + F1, T1, "error",
         r"failed to load: RuntimeError: can't start new thread", container=True),
    # -- time
    Case("infinite_loop", "while True:\n    pass\n", T1, "timeout", r"^time limit exceeded: CPU 1 s$"),
    Case("signals_ignored_while_spinning", "import signal\n"
         "for s in (signal.SIGXCPU, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):\n"
         "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass\n", T1, "timeout",
         r"^time limit exceeded: CPU 1 s$"),
    Case("catastrophic_regex", "import re\nre.match(r'(a+)+$', 'a' * 40 + 'b')\n", T1, "timeout",
         r"^time limit exceeded: CPU 1 s$"),
    Case("sleep_past_the_limit", "import time\ntime.sleep(60)\n", T1, "timeout",
         r"^time limit exceeded: wall clock 4 s"),
    # -- memory
    # Near the cgroup limit the kernel's reclaim attempts are charged to the program's CPU time:
    # give it the default CPU budget so that memory, not time, runs out first.
    Case("memory_bomb", "x = []\nwhile True:\n    x.append(b' ' * 10**7)\n", T1, "oom",
         r"^memory limit exceeded$", Limits(cpu_s=4.0), container=True),
    Case("one_huge_allocation", "x = bytearray(10**12)\n", T1, "oom", r"^memory limit exceeded: MemoryError$"),
    Case("recursion_overflow", "def f(n):\n    return f(n + 1)\n", "assert f(0) == 1", "error",
         r"RecursionError: maximum recursion depth exceeded"),
    # -- output
    Case("stdout_100_mb", "import sys\nsys.stdout.write('x' * 100_000_000)\n" + F1, T1, "passed"),
    Case("endless_output", "import sys\nwhile True:\n    sys.stdout.write('y' * 65536)\n", T1, "killed",
         r"^output limit exceeded"),
    Case("binary_garbage_on_stdout", "import os\nos.write(1, bytes(range(256)) * 64)\n" + F1, T1, "passed"),
    # -- files
    Case("fill_the_tmpfs", "for i in range(100):\n    with open(f'/tmp/fill{i}', 'wb') as fh:\n"
         "        fh.write(b'z' * (16 << 20))\n", T1, "error", r"No space left on device", container=True),
    Case("file_over_the_size_limit", "with open('big', 'wb') as fh:\n    fh.write(b'z' * (64 << 20))\n", T1,
         "error", r"File too large"),
    Case("writes_to_system_files", "import errno\ndef attempts():\n    out = []\n"
         "    for path in ('/etc/passwd', '/usr/lib/python3.11/os.py', '/bin/newfile', '/root/x'):\n"
         "        try:\n            open(path, 'a').close()\n            out.append('written')\n"
         "        except OSError as e:\n            out.append(errno.errorcode[e.errno])\n    return out\n",
         "assert attempts() == ['EACCES', 'EACCES', 'EROFS', 'EACCES']", "passed", container=True),  # non-root, read-only
    # -- network (documentation-only addresses: nothing may leave the container anyway)
    Case("tcp_to_public_address", "import socket\nsocket.create_connection(('198.51.100.7', 80), timeout=2)\n",
         T1, "error", r"OSError: \[Errno 101\] Network is unreachable", container=True),
    Case("udp_to_public_address", "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
         "s.sendto(b'x', ('203.0.113.9', 53))\n", T1, "error", r"Network is unreachable", container=True),
    Case("tcp_ipv6_public", "import socket\nsocket.create_connection(('2001:db8::1', 443), timeout=2)\n",
         T1, "error", r"(Network is unreachable|Cannot assign requested address|Address family)", container=True),
    Case("dns_lookup", "import socket\nsocket.getaddrinfo('example.com', 80)\n", T1, "error", r"gaierror", container=True),
    # -- cheating
    Case("sys_exit_0_before_tests", "import sys\nsys.exit(0)\n" + F1, T1, "error",
         r"^the program failed to load: SystemExit: 0$"),
    Case("os_exit_0_before_tests", "import os\nos._exit(0)\n" + F1, T1, "error",
         r"^the program exited \(code 0\) before the tests completed$"),
    Case("os_exit_0_inside_a_test", "import os\ndef f():\n    os._exit(0)\n", T1, "error",
         r"^the program exited \(code 0\) before the tests completed$"),
    Case("system_exit_inside_a_test", "def f():\n    raise SystemExit(0)\n", T1, "error", r"SystemExit: 0"),
    Case("fake_passed_output", "print('PASSED\\n3 passed, 0 failed\\nOK')\ndef f():\n    return 2\n", T1,
         "failed", r"^`assert f\(\) == 1`: 2 == 1 is False$"),
    # Test code cannot replace the code under test (a real tester wrote its own `def similar_elements`).
    Case("tests_define_the_entry_point", SIMILAR_WRONG, TestSuite(code=SIMILAR_TESTS, entry_point="similar_elements"),
         "failed", r"^`assert set\(similar_elements"),
    Case("tests_assign_a_name_of_the_program", F2, "f = lambda: 1\nassert f() == 1", "failed", r"2 == 1 is False"),
    Case("tests_rebind_inside_an_assert", F2, "assert (f := (lambda: 1)) and True\nassert f() == 1", "failed",
         r"2 == 1 is False"),
    Case("check_suite_defines_the_entry_point", F2,
         TestSuite(code="def f():\n    return 1\ndef check(candidate):\n    assert candidate() == 1\n", entry_point="f"),
         "failed"),
    Case("always_equal_object", "class Yes:\n    def __eq__(self, other):\n        return True\n"
         "    def __ne__(self, other):\n        return False\ndef f():\n    return Yes()\n",
         "assert f() == 1\nassert [f()] == [1]", "failed", r"untrusted comparison: Yes\.__eq__"),
    Case("metaclass_equality_makes_a_class_plain", "class Meta(type):\n    def __eq__(cls, other):\n        return True\n"
         "    __hash__ = type.__hash__\n" + YES.format(meta="metaclass=Meta"), T1, "failed", UNTRUSTED),
    Case("metaclass_fakes_the_mro", "class Meta(type):\n    @property\n    def __mro__(cls):\n        return ()\n"
         "    @property\n    def __dict__(cls):\n        return {}\n" + YES.format(meta="metaclass=Meta"), T1, "failed",
         UNTRUSTED),
    Case("comparison_method_that_is_not_a_function", "class Fn:\n"
         "    __code__ = compile('0', '/usr/lib/python3.11/fake.py', 'eval')\n    def __call__(self, *a):\n"
         "        return True\nclass Yes:\n    __eq__ = Fn()\n    __hash__ = object.__hash__\n"
         "def f():\n    return Yes()\n", T1, "failed", UNTRUSTED),
    Case("patching_a_stdlib_class", "import collections\ncollections.Counter.__eq__ = lambda s, o: True\n"
         "def f():\n    return collections.Counter('ab')\n", "assert f() == {'z': 1}", "failed",
         r"untrusted comparison: Counter\.__eq__"),
    Case("patching_a_stdlib_class_compared_with_its_own_kind", "import collections\n"
         "collections.Counter.__eq__ = lambda s, o: True\ndef f():\n    return collections.Counter('ab')\n",
         "import collections\nassert f() == collections.Counter('z')", "failed",
         r"untrusted comparison: Counter\.__eq__ of the standard library was replaced"),
    Case("dict_subclass_hides_values", YES.format(meta="") + "class D(dict):\n    def keys(self):\n        return []\n"
         "    def values(self):\n        return []\ndef g():\n    return D(a=Yes())\n", "assert g() == {'a': 1}",
         "failed", UNTRUSTED),
    Case("comparisons_with_standard_library_types", STDLIB_VALUES, STDLIB_TESTS, "passed"),
    Case("c_slot_under_another_name", "class Yes(int):\n    __eq__ = int.__ne__\n    __hash__ = int.__hash__\n"
         "def f():\n    return Yes(5)\n", T1, "failed", r"untrusted comparison: Yes\.__eq__"),
    Case("c_subclass_with_its_own_slot", "class Num(int):\n    __eq__ = int.__eq__\n    __hash__ = int.__hash__\n"
         "def f():\n    return Num(1)\n", T1, "passed"),
    Case("global_under_a_str_subclass_key", "class Key(str):\n    calls = 0\n    def __eq__(self, other):\n"
         "        Key.calls += 1\n        return Key.calls > 1  # not to the harness's pop, yes to the test\n"
         "    __hash__ = str.__hash__\n"
         "globals()[Key('len')] = lambda x: 3\n" + F2.replace("2", "[9]"), "assert len(f()) == 3", "failed",
         r"^`assert len\(f\(\)\) == 3`: 1 == 3 is False$"),
    Case("patching_the_harness", "import builtins, json, os, sys\n"
         "for mod in list(sys.modules.values()):\n    for name in list(vars(mod)):\n"
         "        if name.startswith(('_cs', '_harness', '_report', '_make', 'build_result', 'emit')):\n"
         "            try:\n                setattr(mod, name, lambda *a, **k: True)\n"
         "            except Exception:\n                pass\n"
         "builtins.len = lambda x: 3\nbuiltins.sorted = lambda x: [1]\n"
         "json.dumps = lambda *a, **k: '{}'\nos.write = lambda fd, data: len(data)\n"
         "def f():\n    return [9]\n", "assert len(f()) == 3\nassert sorted(f()) == [1]", "failed",
         r"^`assert len\(f\(\)\) == 3`: 1 == 3 is False$"),
    Case("forged_report_line", "import os\nos.write(3, b'{\"kind\": \"done\", \"n\": 1, \"nonce\": \"x\"}\\n')\n"
         "def f():\n    return 2\n", T1, "error", r"report channel was written to by the program"),
    # -- rebinding what the harness or the tests rely on: the verdict is the same as without it
    Case("rebinding_exec_and_compile", "import builtins\nbuiltins.exec = lambda *a, **k: None\n"
         "real_compile = compile\nbuiltins.compile = lambda *a, **k: real_compile('pass', 'x', 'exec')\n" + F2, T1, "failed",
         r"^`assert f\(\) == 1`: 2 == 1 is False$"),
    Case("rebinding_assertion_error", "import builtins\nclass Nope(Exception):\n    pass\n"
         "builtins.AssertionError = Nope\n" + F2, T1, "failed", r"^`assert f\(\) == 1`: 2 == 1 is False$"),
    Case("rebinding_print_isinstance_sys_exit", "import builtins, os, sys\nbuiltins.print = None\n"
         "builtins.isinstance = lambda *a: False\nbuiltins.len = lambda x: 0\nsys.exit = lambda *a: None\n"
         "os._exit = lambda *a: None\nos.write = lambda *a: 0\n" + F1,
         "assert isinstance(f(), int) and len([f()]) == 1", "passed"),
    Case("shadowing_the_comparator", "_cs_cmp = lambda ops, *operands: True\n" + F2, T1, "failed",
         r"^`assert f\(\) == 1`: 2 == 1 is False$"),
    Case("shadowing_a_builtin_the_tests_use", "len = lambda x: 3\ndef isinstance(*a):\n    return True\n"
         "def f():\n    return [9]\n", "assert len(f()) == 3\nassert isinstance(f(), str)", "failed",
         r"^`assert len\(f\(\)\) == 3`: 1 == 3 is False$"),
    Case("entry_point_named_like_a_builtin", "def sum(a, b):\n    return a + b\n",
         "assert sum(10, 15) == 25\nassert sum(-1, 1) == 0", "passed"),  # MBPP 126
    Case("replacing_the_json_encoder", "import json\nclass Lie(json.JSONEncoder):\n"
         "    def encode(self, o):\n        if isinstance(o, dict) and o.get('outcome') == 'failed':\n"
         "            o = dict(o, outcome='passed', message='')\n        return super().encode(o)\n"
         "json._default_encoder = Lie()\njson.dumps = lambda o, **k: Lie().encode(o)\n" + F2, T1, "failed",
         r"^`assert f\(\) == 1`: 2 == 1 is False$"),
    Case("stdlib_rebound_while_loading", "import math\nmath.isclose = lambda *a, **k: True\n" + F2,
         "import math\nassert math.isclose(f(), 1)", "failed", r"^`assert math\.isclose\(f\(\), 1\)`: assertion failed$"),
    Case("stdlib_rebound_during_a_test", "import math\ndef f():\n    math.isclose = lambda *a, **k: True\n"
         "    return 2\n", "import math\nassert f() == 2 and math.isclose(1, 5)", "error",
         r"rebinds math\.isclose of the standard library while the test runs"),
    Case("stdlib_replacement_that_claims_equality", "import math\nclass Same:\n"
         "    def __eq__(self, other):\n        return True\n    __hash__ = object.__hash__\n"
         "    def __call__(self, *a, **k):\n        return True\n"
         "def f():\n    math.isclose = Same()\n    return 2\n",
         "import math\nassert f() == 2 and math.isclose(1, 5)", "error",
         r"rebinds math\.isclose of the standard library while the test runs"),
    Case("replacing_a_module", "import sys, types\nfake = types.ModuleType('math')\nfake.isclose = lambda *a, **k: True\n"
         "sys.modules['math'] = fake\n" + F2, "import math\nassert math.isclose(f(), 1)", "failed",
         r"assertion failed$"),
    Case("exception_whose_str_raises", "class Odd(Exception):\n    def __str__(self):\n        raise RuntimeError('no')\n"
         "def f():\n    raise Odd()\n", T1, "error", r"^`assert f\(\) == 1`: Odd: <the exception's __str__ failed>$"),
    # -- the runner's channel: the program cannot open it, however it names it
    Case("write_to_the_runners_fds_via_proc_1", PROC_1, "assert attempts() == ['EACCES'] * 10", "passed", container=True),
    Case("reach_the_runner_by_pidfd_getfd_and_ptrace", PIDFD,  # ENOSYS: a kernel older than 5.6
         "got = attempts()\nassert set(got[:2]) <= {'EPERM', 'ENOSYS'} and got[2] == 'EPERM'", "passed", container=True),
    Case("a_subprocess_opens_its_parents_fds", PARENT_FDS, "assert attempts() == ['EACCES'] * 4", "passed", container=True),
    Case("forge_a_runner_reply_on_every_inherited_fd", EVERY_FD, T1, "failed",
         r"^`assert f\(\) == 1`: 2 == 1 is False$"),
    Case("io_program_opens_the_harness_report_pipe", "import errno, os\nout = []\n"
         "for fd in (3, 1):\n    try:\n        os.open(f'/proc/{os.getppid()}/fd/{fd}', os.O_WRONLY)\n"
         "        out.append('opened')\n    except OSError as e:\n        out.append(errno.errorcode[e.errno])\n"
         "print(out)\n", TestSuite(kind="io", cases=(IOCase(input="", output="['EACCES', 'EACCES']\n"),)), "passed", container=True),
    Case("syntax_error", "def f(:\n    return 1\n", T1, "error", r"^the program failed to load: SyntaxError"),
    Case("empty_program", "", T1, "error", r"NameError: name 'f' is not defined"),
    Case("non_utf8_source", b"def f():\n    return '\xe9t\xe9'\n", T1, "error",
         r"failed to load: SyntaxError: .*utf-8"),
    Case("tests_that_do_not_parse", F1, "assert f() ==", "error", r"^the tests do not parse: SyntaxError"),
    # -- signals and crashes
    Case("segfault_through_ctypes", "import ctypes\nctypes.string_at(0)\n", T1, "killed",
         r"^killed by signal SIGSEGV$"),
    Case("os_abort", "import os\nos.abort()\n", T1, "killed", r"^killed by signal SIGABRT$"),
    Case("reading_stdin_that_is_not_there", "x = input()\n", T1, "error", r"EOFError"),
    # -- legitimate programs that naive limits break
    Case("multiprocessing_pool_of_2", "from multiprocessing import Pool\ndef square(x):\n    return x * x\n"
         "def total(n):\n    with Pool(2) as p:\n        return sum(p.map(square, range(n)))\n",
         "assert total(1000) == 332833500", "passed"),
    Case("threads", "import threading\ndef count():\n    n = [0]\n    lock = threading.Lock()\n"
         "    def work():\n        for _ in range(10000):\n            with lock:\n                n[0] += 1\n"
         "    ts = [threading.Thread(target=work) for _ in range(8)]\n    for t in ts:\n        t.start()\n"
         "    for t in ts:\n        t.join()\n    return n[0]\n", "assert count() == 80000", "passed"),
    Case("ten_mb_file_in_the_work_dir", "import os\ndef roundtrip():\n    data = os.urandom(10 << 20)\n"
         "    with open('data.bin', 'wb') as fh:\n        fh.write(data)\n"
         "    with open('data.bin', 'rb') as fh:\n        return fh.read() == data\n",
         "assert roundtrip() is True", "passed"),
    Case("local_socket_server_and_client", "import socket, threading\ndef echo():\n"
         "    srv = socket.socket()\n    srv.bind(('127.0.0.1', 0))\n    srv.listen()\n"
         "    def serve():\n        conn, _ = srv.accept()\n        conn.sendall(conn.recv(100).upper())\n"
         "        conn.close()\n    threading.Thread(target=serve).start()\n"
         "    cli = socket.create_connection(srv.getsockname())\n    cli.sendall(b'ping')\n"
         "    return cli.recv(100)\n", "assert echo() == b'PING'", "passed"),
    Case("latin1_source_with_coding_line", b"# -*- coding: latin-1 -*-\ndef f():\n    return '\xe9'\n",
         "assert f() == '\\u00e9'", "passed"),
    Case("humaneval_check_candidate", "def add(a, b):\n    return a + b\n",
         TestSuite(code="METADATA = {}\n\ndef check(candidate):\n    assert candidate(1, 2) == 3\n"
                   "    assert candidate(-1, 1) == 0\n", entry_point="add"), "passed"),
    Case("stdin_stdout_cases", "a, b = map(int, input().split())\nprint(a + b)\n",
         TestSuite(kind="io", cases=(IOCase(input="1 2\n", output="3\n"), IOCase(input="5 5", output="10"))),
         "passed"),
    Case("stdin_stdout_case_that_spins", "while True:\n    pass\n",
         TestSuite(kind="io", cases=(IOCase(input="", output=""),)), "timeout", r"^time limit exceeded: CPU 1 s"),
    Case("stdin_stdout_wrong_answer", "a, b = map(int, input().split())\nprint(a - b)\n",
         TestSuite(kind="io", cases=(IOCase(input="1 2\n", output="3\n"),)), "failed", r"expected '3\\n', got '-1\\n'"),
]

CANARY = ("import subprocess, sys, threading\ndef canary():\n    out = []\n"
          "    ts = [threading.Thread(target=out.append, args=(i,)) for i in range(4)]\n"
          "    for t in ts:\n        t.start()\n    for t in ts:\n        t.join()\n"
          "    p = subprocess.run([sys.executable, '-c', 'print(6 * 7)'], capture_output=True, text=True)\n"
          "    return sorted(out), p.stdout.strip()\n")


def check(result: ExecResult, case: Case) -> None:
    assert result.status == case.status, (result.status, result.message, result.stderr[-500:])
    if case.message:
        assert re.search(case.message, result.message), result.message
    elif case.status == "passed":
        assert result.message == ""


BEHAVIOUR = [c for c in CASES if not c.container]
ISOLATION = [c for c in CASES if c.container]


def test_the_corpus_is_large_enough():
    hostile = [c for c in CASES if c.status != "passed" or "kill" in c.id or "system" in c.id]
    assert len(hostile) >= 30
    assert len([c for c in BEHAVIOUR if c.status != "passed"]) >= 30  # the local backend meets most of it


@pytest.mark.parametrize("case", BEHAVIOUR, ids=[c.id for c in BEHAVIOUR])
def test_conformance(backend, case: Case):
    check(backend(case.program, case.tests, case.limits), case)
    assert_healthy(backend)


@pytest.mark.parametrize("case", ISOLATION, ids=[c.id for c in ISOLATION])
def test_isolation(container, case: Case):
    check(container(case.program, case.tests, case.limits), case)
    assert_healthy(container)


def assert_healthy(runner) -> None:
    if runner.kind == "warm":
        assert_pool_healthy(runner)
    elif runner.kind == "local":
        assert_local_healthy(runner)


def assert_pool_healthy(warm) -> None:
    for _ in range(2):  # a FIFO pool of two: each container runs the canary once
        canary = warm(CANARY, "assert canary() == ([0, 1, 2, 3], '42')")
        assert canary.status == "passed", (canary.message, canary.stderr)
    for state in warm.call(warm.sandbox.health):
        assert state["pids"] == [1], state  # the runner alone
        assert state["leftovers"] == {"/tmp": [], "/dev/shm": [], "/dev/mqueue": []}, state
        assert state["sysv_ipc"] == 0, state
        # The runner's own memory stays near what it was at start (a few MB of slack).
        assert state["rss_kb"] < state["ready_rss_kb"] + 8 * 1024, state


def assert_local_healthy(local) -> None:
    """The local runners: the canary passes on each, none has a descendant left, the scratch folders
    are empty (what the local backend can say of itself; it cannot see the rest of the host)."""
    for _ in range(2):
        canary = local(CANARY, "assert canary() == ([0, 1, 2, 3], '42')")
        assert canary.status == "passed", (canary.message, canary.stderr)
    for state in local.call(local.sandbox.health):
        assert state["children"] == [] and state["leftovers"] == [], state


def test_output_is_truncated_with_a_marker(backend):
    result = backend("import sys\nsys.stdout.write('x' * 100_000_000)\n" + F1, T1)
    assert result.status == "passed"
    assert result.stdout_truncated_bytes == 100_000_000 - len(result.stdout)
    assert len(result.stdout) == result.limits.capture_bytes


def test_binary_output_is_decoded_with_replacement(backend):
    result = backend("import os\nos.write(1, b'ok\\xff\\xfe')\n" + F1, T1)
    assert result.stdout == "ok\ufffd\ufffd"


def test_host_secrets_are_not_in_the_programs_environment(backend, host_secret):
    program = ("import os\ndef leaks():\n    return [k for k, v in os.environ.items()\n"
               f"            if 'KEY' in k or 'TOKEN' in k or 'OPENAI' in k or {host_secret[:12]!r} in v]\n")
    result = backend(program, "assert leaks() == []")
    assert result.status == "passed", result.message


def test_host_secrets_never_reach_the_sandbox(container, host_secret):
    """Not in any process's environment the program can read (/proc/*/environ): a PID namespace."""
    program = (
        "import glob, os\ndef leaks():\n    found = [k for k in os.environ if 'KEY' in k or 'TOKEN' in k]\n"
        "    for path in glob.glob('/proc/*/environ'):\n        try:\n"
        "            with open(path, 'rb') as fh:\n                data = fh.read()\n"
        "        except OSError:\n            continue\n"
        f"        if b'{host_secret[:12]}' in data or b'OPENAI' in data:\n            found.append(path)\n"
        "    return found\ndef pid1_environ_readable():\n    return os.path.exists('/proc/1/environ')\n"
    )
    result = container(program, "assert leaks() == []\nassert pid1_environ_readable()")
    assert result.status == "passed", result.message


def _host_addresses() -> list[str]:
    """This machine's IPv4 addresses (docker0's gateway among them), read from its interfaces."""
    found = []
    for _, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))  # SIOCGIFADDR
            except OSError:
                continue
            addr = socket.inet_ntoa(packed[20:24])
            if not addr.startswith("127."):
                found.append(addr)
    return found


def test_the_hosts_addresses_are_unreachable(container):
    addresses = _host_addresses()
    assert addresses, "this machine has no non-loopback address to try"
    program = (
        "import socket\ndef attempts(addresses):\n    out = []\n    for a in addresses:\n"
        "        for port in (22, 80, 2375):\n            try:\n"
        "                socket.create_connection((a, port), timeout=1).close()\n"
        "                out.append('connected')\n            except OSError as e:\n"
        "                out.append(e.errno)\n    return out\n"
    )
    result = container(program, f"assert set(attempts({addresses!r})) == {{101}}")  # ENETUNREACH
    assert result.status == "passed", result.message


def test_no_state_survives_for_the_next_run(warm):
    writer = (
        "import os\nfor root in ('/tmp', '/tmp/work', '/dev/shm'):\n"
        "    with open(os.path.join(root, 'marker'), 'w') as fh:\n        fh.write('x')\n"
        "os.makedirs('/tmp/locked/deeper')\nos.chmod('/tmp/locked', 0)\n" + F1
    )
    assert warm(writer, T1).status == "passed"
    reader = (
        "import glob\ndef left():\n"
        "    return glob.glob('/tmp/**/*', recursive=True) + glob.glob('/dev/shm/*') + glob.glob('/dev/mqueue/*')\n"
    )
    for _ in range(4):  # both containers of the pool, twice
        result = warm(reader, "assert left() == ['/tmp/work']")
        assert result.status == "passed", result.message
