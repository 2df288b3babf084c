"""Hidden graders of the course (one module per topic) and the harness that runs them."""
