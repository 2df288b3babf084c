"""nbgrader configuration of the course (loaded by nbgrader_config.py).

nbgrader 0.9 ignores ``--config``; it reads ``nbgrader_config.py`` in the working
directory, which loads this file. Run nbgrader from the repository root.
"""

c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads the file)

c.CourseDirectory.course_id = "gemini-workshop"
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = "sqlite:///gradebook.db"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*"]

# Seconds one cell may run while autograding before it is interrupted.
c.ExecutePreprocessor.timeout = 120

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
