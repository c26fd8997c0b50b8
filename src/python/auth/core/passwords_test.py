from auth.core.passwords import Passwords

FAST = {"time_cost": 1, "memory_kib": 1024, "parallelism": 1}


async def test_hash_then_check():
    passwords = Passwords(**FAST)
    stored = await passwords.hash("secret")
    assert stored.startswith("$argon2id$")
    assert (await passwords.check(stored, "secret")).ok
    assert not (await passwords.check(stored, "wrong")).ok


async def test_unknown_user_always_fails_after_a_real_verification():
    passwords = Passwords(**FAST)
    assert not (await passwords.check(None, "anything")).ok


async def test_a_corrupt_stored_hash_fails_instead_of_raising():
    assert not (await Passwords(**FAST).check("not-a-hash", "secret")).ok


async def test_outdated_parameters_yield_a_new_hash():
    stored = await Passwords(**FAST).hash("secret")
    check = await Passwords(**{**FAST, "time_cost": 2}).check(stored, "secret")
    assert check.ok
    assert check.new_hash and "t=2," in check.new_hash
    assert (await Passwords(**FAST).check(stored, "secret")).new_hash is None
