"""grader: release, run, grade and check the course's notebooks with nbgrader.

`python -m grader.release` regenerates notebooks/ (the student copies) from solutions/;
`python -m grader.run` executes every lesson and autogrades it; `python -m grader.grade DIR`
autogrades a folder of submissions and writes grades and feedback; `python -m grader.check NB`
grades one notebook for a learner, without a database. The Makefile calls all four.
"""

CELL_TIMEOUT_S = 300  # seconds one cell may run while grading: the slowest honest cell, with room
COURSE_ID = "lora-in-practice"
