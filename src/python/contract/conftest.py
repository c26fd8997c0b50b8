from testkit.fixtures import *  # noqa: F403
