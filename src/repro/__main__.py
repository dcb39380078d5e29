"""`python -m repro` is the same as the `repro` console script; the Snakefile and dvc.yaml run every job as
`python -m repro run ID`, so this is also where a job process ends."""

import atexit
import logging
import os
import sys
import threading

from repro.cli import main

code = main()
# A job that has loaded torch and transformers spends 1-2 s tearing the interpreter down (module and object
# finalisation), about a minute of a default run's ~100 jobs. Everything a job writes is closed and renamed
# into place before main() returns, so once the exit handlers have run and the streams are flushed, the
# process can end without that teardown. Not when other threads are still running: those get the normal
# exit, which waits for them.
if threading.active_count() == 1:
    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
raise SystemExit(code)
