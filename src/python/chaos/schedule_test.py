"""The storm's fault schedule: drawn from the seed alone, inside the storm, one at a time."""

from chaos.schedule import KINDS, schedule


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
