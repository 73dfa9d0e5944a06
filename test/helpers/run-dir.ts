/** The environment variable naming the test run's own directory (made by test/global-setup.ts). */
export const TEST_RUN_DIR = "SWITCHBOARD_TEST_RUN_DIR";
