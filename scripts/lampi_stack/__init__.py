"""The LAMPI server stack on loopback: `python -m lampi_stack up|down|status` (what `make up` runs).

The configuration comes from the Ansible roles' own templates (ansible/local.yml renders them into the run
folder), so the local stack and a deployed host differ only in variables.
"""
