"""The reconciliation rule, unit: every kind of difference is found, and what is no
difference (a declined card's intent, an attempt under way) is not reported."""

from payments.reconciliation import Difference, differences


def payment(pid: str, intent: str, status: str, cents: int = 1000) -> dict:
    return {"_id": pid, "stripeId": intent, "status": status, "amountCents": cents}


def intent(iid: str, status: str, cents: int = 1000) -> dict:
    return {"id": iid, "status": status, "amount": cents}


def test_books_that_agree_have_no_difference():
    ours = [
        payment("p1", "pi_1", "authorized"),
        payment("p2", "pi_2", "captured"),
        payment("p3", "pi_3", "voided"),
        payment("p4", "pi_4", "refunded"),
        payment("p5", "pi_5", "authorizing"),  # its call to Stripe is under way
    ]
    stripes = [
        intent("pi_1", "requires_capture"),
        intent("pi_2", "succeeded"),
        intent("pi_3", "canceled"),
        intent("pi_4", "succeeded"),
        intent("pi_9", "requires_payment_method"),  # a declined card: no money
    ]
    assert differences(ours, stripes, refunded_intents={"pi_4"}) == []


def test_each_kind_of_difference_is_named():
    ours = [
        payment("p1", "pi_1", "voided"),  # Stripe captured it
        payment("p2", "pi_2", "captured", cents=1000),  # Stripe took another amount
        payment("p3", "pi_3", "authorized"),  # Stripe never heard of it
    ]
    stripes = [
        intent("pi_1", "succeeded"),
        intent("pi_2", "succeeded", cents=1200),
        intent("pi_8", "requires_capture"),  # a hold no payment of ours names
    ]
    assert differences(ours, stripes, refunded_intents=set()) == [
        Difference("state", "pi_1", "p1", "released", "taken"),
        Difference("amount", "pi_2", "p2", "1000", "1200"),
        Difference("missing", "pi_3", "p3", "held", "no such intent"),
        Difference("unknown", "pi_8", None, "no payment", "held"),
    ]
