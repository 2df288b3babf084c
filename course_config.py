"""nbgrader configuration of the course (loaded by nbgrader_config.py).

nbgrader 0.9 ignores ``--config``; it reads ``nbgrader_config.py`` in the working
directory, which loads this file. Run nbgrader from the repository root with the virtual
environment's ``bin/`` on PATH (nbgrader calls ``alembic`` from there).
"""

import os

c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads the file)

c.CourseDirectory.course_id = "gemini-workshop"
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*"]

# The course root, for the guard in the student's kernel (autograder/kernel_guard.py).
os.environ["GW_COURSE_ROOT"] = os.path.dirname(os.path.abspath(__file__))

# Student notebooks get this stub in place of each solution.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# Executing a submission: seconds per cell before it is interrupted, a memory cap on the
# student's kernel, fast mode (notebooks train for seconds, not minutes, while nbgrader runs
# them), and a guard that keeps it away from the course's files. A kernel that dies no longer
# fails the whole submission. Fast mode is set in the kernel, not in this process: JupyterLab's
# Validate button loads this file inside the server, whose later kernels must not inherit it.
c.Execute.timeout = 120
c.Execute.extra_arguments = [
    "--HistoryManager.hist_file=:memory:",
    "--IPKernelApp.exec_lines=["
    "'import resource as _r; _r.setrlimit(_r.RLIMIT_AS, (6 << 30, 6 << 30)); del _r', "
    '\'import os as _o; _o.environ.setdefault("GW_FAST", "1"); del _o\', '
    "'import autograder.kernel_guard as _g; _g.install(); del _g']",
]
# A test cell the student deleted is put back (and graded) rather than skipped.
c.OverwriteCells.add_missing_cells = True

# Scores come from the trusted grader (student code in a sandbox, comparison outside it),
# never from what the student's kernel printed: see autograder/nbgrader_plugin.py.
c.Autograde.autograde_preprocessors = [
    "autograder.nbgrader_plugin.SafeExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "autograder.nbgrader_plugin.TrustedGrades",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.TrustedGrades.step_timeout = 60.0  # a check that loops fails the rest of its item at once
c.TrustedGrades.budget = 900.0  # seconds for the trusted run of one notebook, all checks
c.TrustedGrades.memory_mb = 4096
# Students' code (the kernel, the trusted run) runs in Linux namespaces with bubblewrap
# (Debian's `bubblewrap`; CI installs it). Required here: a machine without it stops
# autograding at once with one line, before any student is graded. Set False to accept the
# audit-hook guard alone (macOS, locked-down distributions); grading then says so once.
c.TrustedGrades.require_sandbox = True
c.Autograde.pre_convert_hook = "autograder.nbgrader_plugin.check_sandbox"
