import pytest

from caldp.exit_codes import ExitCode, explain, table

CONTRACT = {
    "SUCCESS": 0,
    "GENERIC_ERROR": 1,
    "CMDLINE_ERROR": 2,
    "INPUT_TAR_FILE_ERROR": 21,
    "ASTROQUERY_ERROR": 22,
    "STAGE1_ERROR": 23,
    "STAGE2_ERROR": 24,
    "S3_UPLOAD_ERROR": 25,
    "S3_DOWNLOAD_ERROR": 26,
    "BESTREFS_ERROR": 27,
    "CREATE_PREVIEWS_ERROR": 28,
    "SUBPROCESS_MEMORY_ERROR": 31,
    "CALDP_MEMORY_ERROR": 32,
    "CONTAINER_MEMORY_ERROR": 33,
    "OS_MEMORY_ERROR": 34,
    "SVM_ERROR": 40,
    "MVM_ERROR": 41,
}
TERMINATED = 143  # the contract's "conventional 143" for a job ended by SIGTERM


ADDED = {  # caldp's own, beside the contract's (numbers the contract leaves free)
    "WORK_FOLDER_ERROR": 29,
    "DATASET_BUSY": 30,
}


def test_numbers_and_names_are_the_contract():
    assert {c.name: c.value for c in ExitCode} == {
        **CONTRACT,
        **ADDED,
        "TERMINATED": TERMINATED,
    }
    assert not set(ADDED.values()) & set(CONTRACT.values())


def test_memory_codes():
    assert {c for c in ExitCode if c.is_memory_error} == {ExitCode(n) for n in (31, 32, 33, 34)}


def test_explain_by_number_and_name():
    assert explain(31).startswith("31 SUBPROCESS_MEMORY_ERROR")
    assert explain("stage2_error").startswith("24 STAGE2_ERROR")
    assert "signal" in explain("137")
    assert explain(143).startswith("143 TERMINATED: stopped by SIGTERM")
    assert "operator cancel" in explain("terminated")
    with pytest.raises(ValueError):
        explain(99)


def test_table_lists_every_code():
    text = table()
    for name, number in CONTRACT.items():
        assert f"{number:>3}  {name}" in text


def test_exit_codes_have_no_aliases():
    # an alias (two names, one number) would be refused by @unique at import
    assert len(ExitCode.__members__) == len(list(ExitCode))
