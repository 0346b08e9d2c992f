"""The pyfunc MLflow logs and loads, as code ("models from code"): the logged model holds this file
and the pickled RetentionModel (plain data), never a pickled Python object of ours."""

from mlflow.models import set_model

from retain.tracking.pyfunc import RetentionPyfunc

set_model(RetentionPyfunc())
