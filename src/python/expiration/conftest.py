from common.testing.fixtures import *  # noqa: F403
