//! Troupe's Kafka-protocol listener: existing Kafka clients (librdkafka, the Java
//! client, kafka-python) talk to the broker through it. Being built (issue 13); it
//! serves nothing yet.
