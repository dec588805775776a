export AIRFLOW_HOME=$PWD/airflow-home AIRFLOW__CORE__DAGS_FOLDER=$PWD/dags AIRFLOW__CORE__LOAD_EXAMPLES=False
arr-emulator --start-delay 3 > emulator.out 2>&1 &                # the service, on http://127.0.0.1:8710
airflow db migrate > /dev/null                                    # Airflow's database, sqlite in AIRFLOW_HOME
eval "$(grep '^export AIRFLOW_CONN_ARR_DEFAULT=' emulator.out)"   # the connection the emulator printed
airflow dags test my_render                                       # your DAG, deferred waits included
