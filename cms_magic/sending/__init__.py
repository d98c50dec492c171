"""Sending: the client, the async run, answers, retries, the quota, jobs."""
