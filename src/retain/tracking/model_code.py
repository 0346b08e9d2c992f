"""The pyfunc MLflow logs and loads, as code ("models from code"): the logged model holds this file
and the RetentionModel's folder (JSON and LightGBM text), never a pickled Python object of ours.
MLflow's pyfunc loader runs this file; retain's own loaders (the service, ``retain score``) read
the folder alone and run nothing from the artefact store."""

from mlflow.models import set_model

from retain.tracking.pyfunc import RetentionPyfunc

set_model(RetentionPyfunc())
