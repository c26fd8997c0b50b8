from ticketing_common.testing.fixtures import *  # noqa: F403
