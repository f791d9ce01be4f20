"""The report's lines that a reader copies: whether the usable maximum is an answer or a floor."""

from lampi_load.reports.render import usable_state


def test_the_usable_line_says_whether_it_converged_and_to_what():
    settings = {"resolution_users": 10, "resolution_fraction": 0.05, "usable_resolution_fraction": 0.10}
    assert usable_state({"usable_converged": True, "settings": settings}) == "; converged to within 10% or 10 users"
    assert "not converged" in usable_state({"usable_converged": False, "settings": settings})
    # Before the usable search had its own resolution it used the error-free one.
    older = {"usable_converged": True, "settings": {"resolution_users": 10, "resolution_fraction": 0.05}}
    assert usable_state(older) == "; converged to within 5% or 10 users"
    assert usable_state({"settings": settings}) == ""
