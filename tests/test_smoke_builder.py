from exports import purchase, refund, run_night


def test_a_refund_on_day_two_paid_in_full_is_compliant(tmp_path):
    night = run_night(tmp_path, purchases=[purchase()], refunds=[refund()])
    assert night.codes("R1") == set()
    assert night.verdict("R1")["verdict"] == "compliant"
