"""`gen studio`: a local web app to see, hear, explore and keep what a run's decoder makes.

Needs the `studio` extra (FastAPI and uvicorn): `pip install 'gencore[studio]'`. Importing this
package imports neither; `gencore.studio.app.create_app` builds the app.
"""
