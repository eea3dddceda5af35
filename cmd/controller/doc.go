// Command controller runs Brupop's fleet controller: it decides which nodes update, and when,
// from the BottlerocketShadows their agents report. It is configured by upstream's environment
// variables (MY_NODE_NAME, MAX_CONCURRENT_UPDATE, SCHEDULER_CRON_EXPRESSION, ...) and flags
// (see -h), and by the FleetPolicy named "default" in its namespace when there is one.
package main
