from caldp.cli import run_process

run_process()
