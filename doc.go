// Package alpes replicates data between services with the transactional
// outbox and Postgres change data capture, over Apache Pulsar. This package
// holds no code: it is where the layout of the repository is written down
// and checked (layout_test.go). docs/ARCHITECTURE.md draws the map.
//
// The folders, from the bottom up; a package imports only from its own
// layer or the layers below it:
//
//	internal/   foundations: Postgres clusters and the test database
//	            harness, the Pulsar wire codec and admin client, the
//	            real-Pulsar launcher, fault proxy, failpoints, build info
//	broker/     the embedded broker, and brokertest: a broker for any test
//	outbox/     the mechanism every service uses: the writer, the schema
//	            of its tables (outbox/schema), the consumer framework
//	            (outbox/inbox) and the message properties (outbox/eventmeta)
//	relay/      streams each outbox to Pulsar
//	services/   the shop: bff, orders, payments, reporting, and the
//	            catalogue of its topics and events
//	lab/        what drives and judges the system from above: the stacks,
//	            the load generator, the oracle, the chaos soak, the bench
//	cmd/alpes   the one binary, the only importer of lab/
//
// migrations/, proto/ and deploy/ are data: the services' schemas, the
// event catalogue and deployment files.
package alpes
