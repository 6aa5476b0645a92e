"""Real HTTP fakes of the outside services, served on 127.0.0.1 for integration and e2e tests."""
