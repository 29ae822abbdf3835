"""The test image and its compose file, run for real: on a normal machine or offline.

``python -m testfleet.container`` builds the test image, brings the graph service up
next to it, runs the suite in the container and tears everything down again. Where no
image registry can be reached, it first builds the base images from Debian's packages
(:mod:`testfleet.container.offline`) and replaces Neo4j with testfleet's local Bolt
server (:mod:`testfleet.container.graph`, ``docker-compose.offline.yml``).
"""
