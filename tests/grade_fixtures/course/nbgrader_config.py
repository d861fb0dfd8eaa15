# The fixture course of the grading tests: the same layout as the course's own.
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "fixture"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
