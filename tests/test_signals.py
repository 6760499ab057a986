"""Signals are acted on by a relay thread, never inside the code they interrupt (``talkerd/signals.py``).

Each case runs in a child process (signals are per process, and a handler that deadlocks would hang the
test run instead of failing it)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from .conftest import ROOT


def run_child(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_a_signal_that_lands_while_the_main_thread_holds_the_events_lock_still_sets_it():
    # The render loop is inside Event.wait, holding the event's lock, for a few bytecodes of each frame;
    # a handler that called Event.set there waited for itself for ever (the daemon then never stopped).
    child = run_child("""
        import os, signal, sys, threading, time
        from talkerd.signals import SignalRelay

        stop = threading.Event()
        relay = SignalRelay({signal.SIGTERM: stop.set}).start()
        with stop._cond:  # the lock Event.wait and Event.set share, held by the main thread
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.5)  # the Python-level handler runs here, on this thread, with the lock held
            assert not stop.is_set()
        assert stop.wait(10), "the relay did not set the event"
        relay.stop()
        print("stopped")
    """)
    assert child.returncode == 0 and child.stdout.strip() == "stopped", child.stderr


def test_each_signal_runs_its_own_action_and_stop_puts_the_old_handlers_back():
    child = run_child("""
        import os, signal, threading
        from talkerd.signals import SignalRelay

        seen, done = [], threading.Event()
        def note(name):
            seen.append(name)
            if len(seen) == 2:
                done.set()
        relay = SignalRelay({signal.SIGHUP: lambda: note("hup"), signal.SIGUSR1: lambda: note("usr1")}).start()
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGHUP)
        assert done.wait(10), seen
        relay.stop()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL and signal.set_wakeup_fd(-1) == -1
        print(sorted(seen))
    """)
    assert child.returncode == 0 and child.stdout.strip() == "['hup', 'usr1']", child.stderr
