"""The storm's fault schedule: drawn from the seed alone, inside the storm, one at a time."""

import pytest

from chaos.schedule import KINDS, parse_faults, schedule, write_faults


def test_the_same_seed_draws_the_same_schedule_and_another_seed_another():
    assert schedule(7, 120) == schedule(7, 120)
    assert schedule(7, 120) != schedule(8, 120)


def test_faults_fit_the_storm_one_after_another_on_real_targets():
    for seed in range(50):
        faults = schedule(seed, 120)
        assert faults, seed
        ends = [f.at + f.hold for f in faults]
        assert all(end < 120 for end in ends)
        assert all(later.at > end for later, end in zip(faults[1:], ends, strict=False))
        assert all(f.target in KINDS[f.kind] for f in faults)
    kinds = {f.kind for seed in range(50) for f in schedule(seed, 120)}
    assert kinds == set(KINDS)


def test_a_schedule_written_out_reads_back_the_same_and_nonsense_is_named():
    for seed in range(20):
        faults = schedule(seed, 120)
        assert parse_faults(write_faults(faults)) == faults
    for bad, reason in [
        ("12:kill:nats:2", "not a fault the storm makes"),
        ("12:melt:orders:2", "not a fault the storm makes"),
        ("12:kill:orders", "at:kind:target:hold"),
        ("soon:kill:orders:2", "at:kind:target:hold"),
    ]:
        with pytest.raises(ValueError, match=reason):
            parse_faults(bad)
